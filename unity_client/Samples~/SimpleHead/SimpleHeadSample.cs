// Sample: a capsule head with a nose, driven by posebridge. Add this component to an empty GameObject
// in a scene with a Main Camera, press Play, run `posebridge serve` (or `posebridge replay`).
using PoseBridge;
using UnityEngine;

namespace PoseBridge.Samples
{
    [AddComponentMenu("PoseBridge/Samples/Simple Head Sample")]
    public class SimpleHeadSample : MonoBehaviour
    {
        [Tooltip("Daemon host (see the driver's fields for everything else).")]
        public string host = "127.0.0.1";
        public int port = 5570;
        [Tooltip("Distance in front of the Main Camera, metres.")]
        public float distance = 2.5f;
        [Tooltip("Show connection status, latency and angles in the top-left corner.")]
        public bool showStatus = true;

        HeadPoseDriver _driver;

        void Start()
        {
            // Place this object in front of the camera, facing it: the head's +z (its face) looks at the viewer.
            Camera cam = Camera.main;
            if (cam != null)
            {
                transform.position = cam.transform.position + cam.transform.forward * distance;
                transform.rotation = Quaternion.LookRotation(-cam.transform.forward, Vector3.up);
            }

            GameObject head = GameObject.CreatePrimitive(PrimitiveType.Capsule);
            head.name = "Head";
            head.transform.SetParent(transform, false);
            head.transform.localScale = new Vector3(0.5f, 0.4f, 0.5f);

            GameObject nose = GameObject.CreatePrimitive(PrimitiveType.Cube);
            nose.name = "Nose";
            nose.transform.SetParent(head.transform, false);
            nose.transform.localPosition = new Vector3(0f, 0f, 0.55f);
            nose.transform.localScale = new Vector3(0.15f, 0.25f, 0.3f);

            // The capsule's own axes are x right, y up, z forward, so no characterRoot is needed.
            _driver = head.AddComponent<HeadPoseDriver>();
            _driver.host = host;
            _driver.port = port;
        }

        void OnGUI()
        {
            if (!showStatus || _driver == null) return;
            var p = _driver.LatestPose;
            string text = "posebridge " + _driver.State + (_driver.IsLive ? "  live" : "  (neutral)")
                          + "\nyaw " + p.Euler.Yaw.ToString("F1") + "  pitch " + p.Euler.Pitch.ToString("F1") + "  roll " + p.Euler.Roll.ToString("F1")
                          + "\nlatency " + _driver.LatencyMs.ToString("F1") + " ms   seq " + p.Seq
                          + "\nR = recenter";
            GUI.Label(new Rect(10, 10, 420, 80), text);
        }
    }
}

// Sample: drive a humanoid avatar's head bone. Add this component next to the avatar's Animator
// (Animation Type = Humanoid in the model's import settings), press Play, run the daemon.
using PoseBridge;
using UnityEngine;

namespace PoseBridge.Samples
{
    [AddComponentMenu("PoseBridge/Samples/Humanoid Head Setup")]
    [RequireComponent(typeof(Animator))]
    public class HumanoidHeadSetup : MonoBehaviour
    {
        public string host = "127.0.0.1";
        public int port = 5570;

        void Start()
        {
            Animator animator = GetComponent<Animator>();
            if (!animator.isHuman)
            {
                Debug.LogError("HumanoidHeadSetup: the Animator's avatar is not Humanoid; set Animation Type = Humanoid "
                               + "or add HeadPoseDriver to the head bone by hand.", this);
                return;
            }
            Transform head = animator.GetBoneTransform(HumanBodyBones.Head);
            if (head == null)
            {
                Debug.LogError("HumanoidHeadSetup: the avatar has no Head bone mapped.", this);
                return;
            }
            HeadPoseDriver driver = head.gameObject.GetComponent<HeadPoseDriver>();
            if (driver == null) driver = head.gameObject.AddComponent<HeadPoseDriver>();
            driver.host = host;
            driver.port = port;
            // Head bones rarely have x right / y up / z forward axes: express the pose in the character's
            // axes (this GameObject faces +z) and measure the bone's offset now, in the rest pose.
            driver.characterRoot = transform;
            driver.CalibrateAxes();
        }
    }
}

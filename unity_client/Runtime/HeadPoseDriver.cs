// Drives a head Transform from the posebridge pose stream. Unity-side glue only: networking, decoding
// and rotation math live in Runtime/Core (plain C#).
using System;
using System.Collections.Concurrent;
using System.Threading;
using PoseBridge.Core;
using UnityEngine;

namespace PoseBridge
{
    /// <summary>Where a recenter is applied.</summary>
    public enum RecenterMode
    {
        /// <summary>In this component: the current pose becomes neutral for this avatar only.</summary>
        Local,
        /// <summary>Sends `recenter` to the daemon's control socket: every subscriber gets recentered poses.</summary>
        Daemon,
    }

    /// <summary>What the streamed head position (`pos`) moves.</summary>
    public enum PositionTarget
    {
        /// <summary>Rotation only (the behaviour before `pos` existed).</summary>
        None,
        /// <summary>Moves <see cref="HeadPoseDriver.target"/> (the head) by the offset.</summary>
        Target,
        /// <summary>Moves <see cref="HeadPoseDriver.positionRoot"/> (the whole avatar) by the offset.</summary>
        Root,
    }

    /// <summary>
    /// Applies the streamed head rotation to <see cref="target"/> in LateUpdate (after animation), with
    /// a recenterable neutral, per-axis scale/invert/limits, frame-rate independent slerp smoothing and
    /// an ease back to neutral when the stream is lost; optionally the head position (`pos`) to the head or
    /// the avatar root, with a scale, per-axis enable and limit. The socket runs on a background thread and is
    /// stopped in OnDisable/OnApplicationQuit, so pressing Stop in the editor never hangs.
    /// </summary>
    [AddComponentMenu("PoseBridge/Head Pose Driver")]
    [DisallowMultipleComponent]
    [DefaultExecutionOrder(1000)]
    public class HeadPoseDriver : MonoBehaviour
    {
        [Header("Connection")]
        [Tooltip("Host running `posebridge serve` (use 127.0.0.1 on the same machine).")]
        public string host = "127.0.0.1";
        [Tooltip("Pose (PUB) port of the daemon, --publish (default 5570).")]
        public int port = 5570;
        [Tooltip("Control (REP) port of the daemon, --control (default 5571). Used by Recenter Mode = Daemon.")]
        public int controlPort = 5571;
        [Tooltip("Follow only this face_id when the daemon runs with --all-faces; -1 = every message (the primary face).")]
        public int faceId = -1;
        [Tooltip("Write connection changes and rejected messages to the Console.")]
        public bool logConnection = true;

        [Header("Target")]
        [Tooltip("Transform to rotate (a head bone or a head object). Empty = this GameObject.")]
        public Transform target;
        [Tooltip("Character root whose axes are x = right, y = up, z = forward. Set it for rigs whose head bone has other local axes "
                 + "(most humanoids); the offset is measured when the component is enabled. Empty = the target's own axes.")]
        public Transform characterRoot;

        [Header("Recenter")]
        [Tooltip("Key that makes the current head pose the neutral pose (legacy Input Manager). None = no key.")]
        public KeyCode recenterKey = KeyCode.R;
        [Tooltip("Local: neutral kept in this component. Daemon: send `recenter` to the daemon's control socket.")]
        public RecenterMode recenterMode = RecenterMode.Local;
        [Tooltip("Take the first received pose as neutral (Local mode).")]
        public bool recenterOnFirstPose;

        [Header("Axes")]
        [Tooltip("Mirror the motion (selfie view): negates yaw and roll. Leave off if the daemon already runs with --mirror.")]
        public bool mirror;
        [Tooltip("Multiplier on yaw (turning left/right).")]
        public float yawScale = 1f;
        [Tooltip("Multiplier on pitch (looking up/down).")]
        public float pitchScale = 1f;
        [Tooltip("Multiplier on roll (tilting towards a shoulder).")]
        public float rollScale = 1f;
        public bool invertYaw;
        public bool invertPitch;
        public bool invertRoll;
        [Tooltip("Largest yaw applied, degrees either side of neutral.")]
        [Range(0f, 180f)] public float yawLimit = 90f;
        [Tooltip("Largest pitch applied, degrees either side of neutral.")]
        [Range(0f, 90f)] public float pitchLimit = 60f;
        [Tooltip("Largest roll applied, degrees either side of neutral.")]
        [Range(0f, 180f)] public float rollLimit = 50f;

        [Header("Position")]
        [Tooltip("Apply the head position the daemon sends (`pos`, metres): None = rotation only; Target = move the head; "
                 + "Root = move Position Root (the whole avatar).")]
        public PositionTarget positionTarget = PositionTarget.None;
        [Tooltip("Transform moved with Position Target = Root. Empty = Character Root, or else this object's topmost parent.")]
        public Transform positionRoot;
        [Tooltip("Multiplier on the head position (1 = real metres; avatars of another size may want more or less).")]
        public float positionScale = 1f;
        [Tooltip("Apply sideways motion (x, the avatar's right).")]
        public bool moveX = true;
        [Tooltip("Apply vertical motion (y, up).")]
        public bool moveY = true;
        [Tooltip("Apply motion towards and away from the camera (z, the avatar's forward).")]
        public bool moveZ = true;
        [Tooltip("Largest offset applied per axis, metres either side of neutral.")]
        [Range(0f, 2f)] public float positionLimit = 0.5f;

        [Header("Smoothing")]
        [Tooltip("Time constant of the slerp towards the newest pose, seconds (0 = no smoothing). The daemon already filters; "
                 + "this only hides the step between 30 Hz poses at a higher display rate.")]
        [Range(0f, 0.5f)] public float smoothingTime = 0.05f;
        [Tooltip("Use unscaled time, so smoothing keeps working while Time.timeScale is 0.")]
        public bool useUnscaledTime = true;

        [Header("Lost stream")]
        [Tooltip("Seconds without a message after which the stream counts as lost.")]
        public float lostTimeout = 0.5f;
        [Tooltip("Also go to neutral while the daemon reports tracked = false (no face).")]
        public bool neutralWhenUntracked = true;
        [Tooltip("Time constant of the ease back to neutral when lost, seconds.")]
        [Range(0.01f, 2f)] public float returnToNeutralTime = 0.3f;

        PoseBridgeClient _client;
        string _clientHost;
        int _clientPort, _clientFaceId;
        readonly ConcurrentQueue<string> _logs = new ConcurrentQueue<string>();
        readonly HeadPoseProcessor _processor = new HeadPoseProcessor();
        Quaternion _current = Quaternion.identity;
        Quaternion _baseLocal = Quaternion.identity;
        Quaternion _lastApplied = Quaternion.identity;
        Quaternion _axisOffset = Quaternion.identity;
        bool _applied;
        Transform _moved;
        Vector3 _baseLocalPosition;
        Vector3 _lastPosition;
        bool _positionApplied;
        int _controlBusy;
        PoseSample _latest;

        /// <summary>The client (null while disabled).</summary>
        public PoseBridgeClient Client { get { return _client; } }
        /// <summary>True while fresh poses arrive (and, with neutralWhenUntracked, a face is tracked).</summary>
        public bool IsLive { get { return _processor.IsLive; } }
        /// <summary>The newest message as of this frame's LateUpdate.</summary>
        public PoseSample LatestPose { get { return _latest; } }
        /// <summary>Capture-to-receive latency of the newest message, milliseconds.</summary>
        public double LatencyMs { get { return _latest.CaptureLatency * 1000.0; } }
        public ConnectionState State { get { return _client == null ? ConnectionState.Stopped : _client.State; } }
        /// <summary>The rotation currently applied on top of the animated pose (head-local axes).</summary>
        public Quaternion AppliedRotation { get { return _current; } }
        /// <summary>The head offset currently applied (metres, the avatar's axes: x right, y up, z forward).</summary>
        public Vector3 AppliedOffset { get { return ToUnity(_processor.CurrentPosition); } }

        Transform Target { get { return target != null ? target : transform; } }

        Transform PositionRoot
        {
            get
            {
                if (positionRoot != null) return positionRoot;
                return characterRoot != null ? characterRoot : transform.root;
            }
        }

        void OnEnable()
        {
            CalibrateAxes();
            StartClient();
        }

        void OnDisable()
        {
            StopClient();
            RestoreBasePose();
            RestorePosition();
        }

        void OnApplicationQuit()
        {
            StopClient();
        }

        void OnDestroy()
        {
            StopClient();
        }

        void OnValidate()
        {
            port = Mathf.Clamp(port, 1, 65535);
            controlPort = Mathf.Clamp(controlPort, 1, 65535);
            lostTimeout = Mathf.Max(0.05f, lostTimeout);
        }

        /// <summary>Measures the head's axes relative to <see cref="characterRoot"/> (call with the head in its rest pose).</summary>
        public void CalibrateAxes()
        {
            _axisOffset = characterRoot != null ? Quaternion.Inverse(characterRoot.rotation) * Target.rotation : Quaternion.identity;
        }

        /// <summary>Makes the current head pose the neutral pose (see <see cref="recenterMode"/>).</summary>
        public void Recenter()
        {
            if (recenterMode == RecenterMode.Local)
            {
                _processor.RequestRecenter();
                return;
            }
            _processor.ClearRecenter();
            SendControl("recenter");
        }

        /// <summary>Forgets the local neutral: identity = facing the camera again.</summary>
        public void ClearRecenter()
        {
            _processor.ClearRecenter();
        }

        void StartClient()
        {
            StopClient();
            _clientHost = host;
            _clientPort = port;
            _clientFaceId = faceId;
            var options = new PoseBridgeClientOptions { Endpoint = "tcp://" + host + ":" + port, FaceId = faceId };
            if (logConnection) options.Log = _logs.Enqueue;
            try
            {
                _client = new PoseBridgeClient(options);
                _client.Start();
            }
            catch (ArgumentException e)
            {
                Debug.LogError("PoseBridge: " + e.Message, this);
                _client = null;
            }
        }

        void StopClient()
        {
            PoseBridgeClient c = _client;
            _client = null;
            if (c != null && !c.Stop(500))
                Debug.LogWarning("PoseBridge: client thread still finishing; it is a background thread and exits on its own.");
        }

        void SendControl(string command)
        {
            if (Interlocked.CompareExchange(ref _controlBusy, 1, 0) != 0) return;
            string endpoint = "tcp://" + host + ":" + controlPort;
            ThreadPool.QueueUserWorkItem(_ =>
            {
                try
                {
                    ControlReply r = ControlClient.Send(endpoint, command, 2000);
                    _logs.Enqueue(r.Ok ? "[posebridge] daemon: " + command + " ok" : "[posebridge] daemon: " + r.Error);
                }
                finally
                {
                    Interlocked.Exchange(ref _controlBusy, 0);
                }
            });
        }

        void Update()
        {
            if (_clientPort != port || _clientFaceId != faceId || !string.Equals(_clientHost, host)) StartClient(); // edited in the inspector
#if ENABLE_LEGACY_INPUT_MANAGER
            if (recenterKey != KeyCode.None && Input.GetKeyDown(recenterKey)) Recenter();
#endif
            string line;
            while (_logs.TryDequeue(out line))
                if (logConnection) Debug.Log(line, this);
        }

        void LateUpdate()
        {
            CopySettings(_processor.Settings);
            bool hasPose = _client != null && _client.TryGetLatest(out _latest);
            double age = hasPose ? _client.LatestAgeSeconds : double.PositiveInfinity;
            float dt = useUnscaledTime ? Time.unscaledDeltaTime : Time.deltaTime;
            _current = ToUnity(_processor.Step(hasPose, ref _latest, age, dt));
            Apply(_current);
            ApplyPosition(_processor.CurrentPosition);
        }

        void CopySettings(HeadPoseSettings s)
        {
            s.Mirror = mirror;
            s.YawScale = yawScale;
            s.PitchScale = pitchScale;
            s.RollScale = rollScale;
            s.InvertYaw = invertYaw;
            s.InvertPitch = invertPitch;
            s.InvertRoll = invertRoll;
            s.YawLimit = yawLimit;
            s.PitchLimit = pitchLimit;
            s.RollLimit = rollLimit;
            s.SmoothingTime = smoothingTime;
            s.LostTimeout = lostTimeout;
            s.NeutralWhenUntracked = neutralWhenUntracked;
            s.ReturnToNeutralTime = returnToNeutralTime;
            s.RecenterOnFirstPose = recenterOnFirstPose && recenterMode == RecenterMode.Local;
            s.PositionScale = positionScale;
            s.MoveX = moveX;
            s.MoveY = moveY;
            s.MoveZ = moveZ;
            s.PositionLimit = positionLimit;
        }

        static Quaternion ToUnity(QuatD q)
        {
            return new Quaternion((float)q.X, (float)q.Y, (float)q.Z, (float)q.W);
        }

        static Vector3 ToUnity(Vec3D v)
        {
            return new Vector3((float)v.X, (float)v.Y, (float)v.Z);
        }

        /// <summary>Moves the head or the avatar root by <paramref name="offset"/> (the avatar's axes) on top of its
        /// animated or stored position, as <see cref="Apply"/> does for the rotation.</summary>
        void ApplyPosition(Vec3D offset)
        {
            Transform t = positionTarget == PositionTarget.None ? null
                : positionTarget == PositionTarget.Root ? PositionRoot : Target;
            if (t != _moved)
            {
                RestorePosition();
                _moved = t;
            }
            if (t == null) return;
            Vector3 baseLocal = _positionApplied && t.localPosition == _lastPosition ? _baseLocalPosition : t.localPosition;
            _baseLocalPosition = baseLocal;
            // The avatar's axes in world space: the character root's, or else the moved object's rest axes.
            Quaternion frame;
            if (characterRoot != null) frame = characterRoot.rotation;
            else if (t == Target) frame = (t.parent != null ? t.parent.rotation : Quaternion.identity) * _baseLocal;
            else frame = t.rotation;
            Vector3 world = frame * ToUnity(offset);
            Vector3 local = t.parent != null ? t.parent.InverseTransformVector(world) : world;
            t.localPosition = baseLocal + local;
            _lastPosition = t.localPosition;
            _positionApplied = true;
        }

        void RestorePosition()
        {
            if (_positionApplied && _moved != null && _moved.localPosition == _lastPosition) _moved.localPosition = _baseLocalPosition;
            _positionApplied = false;
            _moved = null;
        }

        void Apply(Quaternion rotation)
        {
            Transform t = Target;
            // If nothing else wrote the rotation since our last write (no Animator on this bone), keep the
            // stored base pose; otherwise the animation's fresh pose is the new base.
            Quaternion baseLocal = _applied && t.localRotation == _lastApplied ? _baseLocal : t.localRotation;
            _baseLocal = baseLocal;
            var offset = new QuatD(_axisOffset.x, _axisOffset.y, _axisOffset.z, _axisOffset.w);
            var inBone = HeadRotation.InBoneAxes(new QuatD(rotation.x, rotation.y, rotation.z, rotation.w), offset);
            t.localRotation = baseLocal * ToUnity(inBone);
            _lastApplied = t.localRotation;
            _applied = true;
        }

        void RestoreBasePose()
        {
            if (!_applied) return;
            Transform t = Target;
            if (t != null && t.localRotation == _lastApplied) t.localRotation = _baseLocal;
            _applied = false;
            _current = Quaternion.identity;
            _processor.Reset();
        }
    }
}

// Per-frame head pose shaping, engine-independent so it can be tested outside Unity: recentering,
// per-axis scale/invert/limits, frame-rate independent slerp smoothing and the ease back to neutral
// when the stream is lost, for the rotation `q` and the optional head position `pos`. HeadPoseDriver
// feeds it once per rendered frame.
using System;

namespace PoseBridge.Core
{
    /// <summary>Tuning of <see cref="HeadPoseProcessor"/> (HeadPoseDriver copies its inspector fields here).</summary>
    public sealed class HeadPoseSettings
    {
        /// <summary>Negate yaw and roll (selfie view).</summary>
        public bool Mirror;
        public double YawScale = 1, PitchScale = 1, RollScale = 1;
        public bool InvertYaw, InvertPitch, InvertRoll;
        /// <summary>Largest applied angle either side of neutral, degrees.</summary>
        public double YawLimit = 90, PitchLimit = 60, RollLimit = 50;
        /// <summary>Time constant of the slerp towards the newest pose, seconds (0 = none).</summary>
        public double SmoothingTime = 0.05;
        /// <summary>Seconds without a message after which the stream counts as lost.</summary>
        public double LostTimeout = 0.5;
        /// <summary>Treat tracked == false (no face) as lost.</summary>
        public bool NeutralWhenUntracked = true;
        /// <summary>Time constant of the ease back to neutral, seconds.</summary>
        public double ReturnToNeutralTime = 0.3;
        /// <summary>Take the first live pose as neutral.</summary>
        public bool RecenterOnFirstPose;
        /// <summary>Multiplier on the head position (`pos`).</summary>
        public double PositionScale = 1;
        /// <summary>Per-axis enable of the head position (x right, y up, z forward).</summary>
        public bool MoveX = true, MoveY = true, MoveZ = true;
        /// <summary>Largest applied offset per axis, metres either side of neutral.</summary>
        public double PositionLimit = 0.5;
    }

    public sealed class HeadPoseProcessor
    {
        public readonly HeadPoseSettings Settings;
        QuatD _current = QuatD.Identity;
        QuatD _neutral = QuatD.Identity;
        bool _hasNeutral, _recenterPending;
        Vec3D _position = Vec3D.Zero;
        Vec3D _neutralPosition = Vec3D.Zero;
        bool _hasNeutralPosition;

        public HeadPoseProcessor(HeadPoseSettings settings = null)
        {
            Settings = settings ?? new HeadPoseSettings();
        }

        /// <summary>The smoothed rotation to apply, head-local (identity = neutral).</summary>
        public QuatD Current { get { return _current; } }
        /// <summary>True when the last step had a fresh (and, if required, tracked) pose.</summary>
        public bool IsLive { get; private set; }
        public bool HasNeutral { get { return _hasNeutral; } }
        public QuatD Neutral { get { return _neutral; } }
        /// <summary>The smoothed head offset to apply, metres in the neutral head's axes (zero = neutral).</summary>
        public Vec3D CurrentPosition { get { return _position; } }
        /// <summary>True when the last live step had a position (`pos` not nil).</summary>
        public bool HasPosition { get; private set; }

        /// <summary>The next live pose becomes the neutral pose.</summary>
        public void RequestRecenter() { _recenterPending = true; }

        /// <summary>Back to the stream's own neutral (facing the camera, or the daemon's recenter).</summary>
        public void ClearRecenter()
        {
            _hasNeutral = false;
            _recenterPending = false;
            _neutral = QuatD.Identity;
            _hasNeutralPosition = false;
            _neutralPosition = Vec3D.Zero;
        }

        /// <summary>Snap to neutral (e.g. when the component is re-enabled).</summary>
        public void Reset()
        {
            _current = QuatD.Identity;
            _position = Vec3D.Zero;
        }

        /// <summary>
        /// Advances one rendered frame of <paramref name="dt"/> seconds. <paramref name="hasPose"/> is false
        /// before the first message; <paramref name="age"/> is the seconds since that message arrived.
        /// </summary>
        public QuatD Step(bool hasPose, ref PoseSample pose, double age, double dt)
        {
            HeadPoseSettings s = Settings;
            QuatD target = QuatD.Identity;
            Vec3D targetPosition = Vec3D.Zero;
            IsLive = hasPose && age <= s.LostTimeout && (pose.Tracked || !s.NeutralWhenUntracked);
            HasPosition = IsLive && pose.HasPos && pose.Position.IsFinite;
            if (IsLive)
            {
                QuatD q = pose.Rotation.Canonical();
                if (s.Mirror) q = HeadRotation.Mirror(q);
                Vec3D p = HasPosition ? (s.Mirror ? HeadPosition.Mirror(pose.Position) : pose.Position) : Vec3D.Zero;
                if (_recenterPending || (s.RecenterOnFirstPose && !_hasNeutral))
                {
                    _neutral = q;
                    _hasNeutral = true;
                    _recenterPending = false;
                    _neutralPosition = p;
                    _hasNeutralPosition = HasPosition;
                }
                target = Shape(_hasNeutral ? HeadRotation.Recenter(q, _neutral) : q);
                if (HasPosition)
                    targetPosition = HeadPosition.Shape(_hasNeutralPosition ? p - _neutralPosition : p, s.PositionScale,
                                                        s.MoveX, s.MoveY, s.MoveZ, s.PositionLimit);
            }
            // Without a live position (lost, or a daemon that sends none) the offset eases back to zero.
            double tau = IsLive ? s.SmoothingTime : s.ReturnToNeutralTime;
            double k = tau <= 0 ? 1.0 : 1.0 - Math.Exp(-Math.Max(0.0, dt) / tau);
            _current = QuatD.Slerp(_current, target, k);
            _position = _position + (targetPosition - _position) * (HasPosition || !IsLive ? k : ReturnFactor(dt));
            return _current;
        }

        double ReturnFactor(double dt)
        {
            double tau = Settings.ReturnToNeutralTime;
            return tau <= 0 ? 1.0 : 1.0 - Math.Exp(-Math.Max(0.0, dt) / tau);
        }

        /// <summary>Per-axis scale, invert and limits, applied to the dataset angles of a relative rotation.</summary>
        public QuatD Shape(QuatD rel)
        {
            HeadPoseSettings s = Settings;
            bool passThrough = s.YawScale == 1 && s.PitchScale == 1 && s.RollScale == 1 && !s.InvertYaw && !s.InvertPitch
                               && !s.InvertRoll && s.YawLimit >= 180 && s.PitchLimit >= 90 && s.RollLimit >= 180;
            if (passThrough) return rel;
            YawPitchRoll a = HeadRotation.ToDataset(rel, false);
            a.Yaw = Clamp(a.Yaw * s.YawScale * (s.InvertYaw ? -1 : 1), s.YawLimit);
            a.Pitch = Clamp(a.Pitch * s.PitchScale * (s.InvertPitch ? -1 : 1), s.PitchLimit);
            a.Roll = Clamp(a.Roll * s.RollScale * (s.InvertRoll ? -1 : 1), s.RollLimit);
            return HeadRotation.ToUnity(a, false);
        }

        static double Clamp(double v, double limit)
        {
            return Math.Max(-limit, Math.Min(limit, v));
        }
    }
}

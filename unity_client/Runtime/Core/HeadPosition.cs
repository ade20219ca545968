// Head position math in doubles: the optional `pos` of protocol v1 (docs/protocol.md, "Head position"):
// metres relative to the neutral position, in the neutral head's axes x = right, y = up, z = forward
// (towards the camera), the same axes as the rotation `q`.
using System;

namespace PoseBridge.Core
{
    /// <summary>A double-precision vector (metres) with Unity's axis order.</summary>
    public struct Vec3D
    {
        public double X, Y, Z;

        public Vec3D(double x, double y, double z)
        {
            X = x;
            Y = y;
            Z = z;
        }

        public static Vec3D Zero { get { return new Vec3D(0, 0, 0); } }

        public static Vec3D operator +(Vec3D a, Vec3D b) { return new Vec3D(a.X + b.X, a.Y + b.Y, a.Z + b.Z); }
        public static Vec3D operator -(Vec3D a, Vec3D b) { return new Vec3D(a.X - b.X, a.Y - b.Y, a.Z - b.Z); }
        public static Vec3D operator *(Vec3D a, double s) { return new Vec3D(a.X * s, a.Y * s, a.Z * s); }

        public double Length { get { return Math.Sqrt(X * X + Y * Y + Z * Z); } }

        public bool IsFinite
        {
            get
            {
                return !(double.IsNaN(X) || double.IsNaN(Y) || double.IsNaN(Z)
                         || double.IsInfinity(X) || double.IsInfinity(Y) || double.IsInfinity(Z));
            }
        }

        public override string ToString()
        {
            return string.Format("({0:F4}, {1:F4}, {2:F4})", X, Y, Z);
        }
    }

    public static class HeadPosition
    {
        /// <summary>The selfie-view reflection of a position (x negated), as <see cref="HeadRotation.Mirror"/> for q.</summary>
        public static Vec3D Mirror(Vec3D p)
        {
            return new Vec3D(-p.X, p.Y, p.Z);
        }

        /// <summary>Scale, per-axis enable and a per-axis limit (metres either side of neutral), in that order.</summary>
        public static Vec3D Shape(Vec3D p, double scale, bool moveX, bool moveY, bool moveZ, double limit)
        {
            return new Vec3D(moveX ? Clamp(p.X * scale, limit) : 0, moveY ? Clamp(p.Y * scale, limit) : 0,
                             moveZ ? Clamp(p.Z * scale, limit) : 0);
        }

        static double Clamp(double v, double limit)
        {
            return Math.Max(-limit, Math.Min(limit, v));
        }
    }
}

// =====================================================================================================
// COMPILE-ONLY STAND-IN FOR UnityEngine. NOT UNITY. NEVER RUN THIS CODE.
// It declares the few UnityEngine types and members that Runtime/*.cs and Samples~/*.cs use, with the
// same names and signatures as Unity's API, so CI (mono's mcs) can type-check the MonoBehaviours
// without Unity installed: a typo or a wrong signature in the package fails the build. Every member
// throws. Inside Unity this file is excluded twice: its assembly definition has a define constraint
// that is never set, and the code below is compiled only when UNITY_5_3_OR_NEWER is not defined.
// When the package code starts using another UnityEngine member, add it here with Unity's signature.
// =====================================================================================================
#if !UNITY_5_3_OR_NEWER
using System;

namespace UnityEngine
{
    static class StandIn
    {
        public static Exception NotUnity() { return new NotSupportedException("compile-only UnityEngine stand-in"); }
    }

    public class Object
    {
        public string name { get { throw StandIn.NotUnity(); } set { throw StandIn.NotUnity(); } }
        public static void Destroy(Object obj) { throw StandIn.NotUnity(); }
        public static bool operator ==(Object a, Object b) { throw StandIn.NotUnity(); }
        public static bool operator !=(Object a, Object b) { throw StandIn.NotUnity(); }
        public static implicit operator bool(Object exists) { throw StandIn.NotUnity(); }
        public override bool Equals(object other) { throw StandIn.NotUnity(); }
        public override int GetHashCode() { throw StandIn.NotUnity(); }
    }

    public class Component : Object
    {
        public Transform transform { get { throw StandIn.NotUnity(); } }
        public GameObject gameObject { get { throw StandIn.NotUnity(); } }
        public T GetComponent<T>() { throw StandIn.NotUnity(); }
        public T GetComponentInParent<T>() { throw StandIn.NotUnity(); }
    }

    public class Behaviour : Component
    {
        public bool enabled { get { throw StandIn.NotUnity(); } set { throw StandIn.NotUnity(); } }
    }

    public class MonoBehaviour : Behaviour { }

    public class Transform : Component
    {
        public Vector3 position { get { throw StandIn.NotUnity(); } set { throw StandIn.NotUnity(); } }
        public Vector3 localPosition { get { throw StandIn.NotUnity(); } set { throw StandIn.NotUnity(); } }
        public Vector3 localScale { get { throw StandIn.NotUnity(); } set { throw StandIn.NotUnity(); } }
        public Quaternion rotation { get { throw StandIn.NotUnity(); } set { throw StandIn.NotUnity(); } }
        public Quaternion localRotation { get { throw StandIn.NotUnity(); } set { throw StandIn.NotUnity(); } }
        public Vector3 forward { get { throw StandIn.NotUnity(); } set { throw StandIn.NotUnity(); } }
        public Transform parent { get { throw StandIn.NotUnity(); } set { throw StandIn.NotUnity(); } }
        public Transform root { get { throw StandIn.NotUnity(); } }
        public void SetParent(Transform parent, bool worldPositionStays) { throw StandIn.NotUnity(); }
        public Vector3 InverseTransformVector(Vector3 vector) { throw StandIn.NotUnity(); }
    }

    public sealed class GameObject : Object
    {
        public GameObject(string name) { throw StandIn.NotUnity(); }
        public Transform transform { get { throw StandIn.NotUnity(); } }
        public T AddComponent<T>() where T : Component { throw StandIn.NotUnity(); }
        public T GetComponent<T>() { throw StandIn.NotUnity(); }
        public static GameObject CreatePrimitive(PrimitiveType type) { throw StandIn.NotUnity(); }
    }

    public enum PrimitiveType { Sphere = 0, Capsule = 1, Cylinder = 2, Cube = 3, Plane = 4, Quad = 5 }

    public sealed class Camera : Behaviour
    {
        public static Camera main { get { throw StandIn.NotUnity(); } }
    }

    public sealed class Animator : Behaviour
    {
        public bool isHuman { get { throw StandIn.NotUnity(); } }
        public Transform GetBoneTransform(HumanBodyBones humanBoneId) { throw StandIn.NotUnity(); }
    }

    public enum HumanBodyBones
    {
        Hips = 0, LeftUpperLeg = 1, RightUpperLeg = 2, LeftLowerLeg = 3, RightLowerLeg = 4, LeftFoot = 5, RightFoot = 6,
        Spine = 7, Chest = 8, Neck = 9, Head = 10,
    }

    public struct Vector3
    {
        public float x, y, z;
        public Vector3(float x, float y, float z) { throw StandIn.NotUnity(); }
        public static Vector3 up { get { throw StandIn.NotUnity(); } }
        public static Vector3 forward { get { throw StandIn.NotUnity(); } }
        public static Vector3 operator +(Vector3 a, Vector3 b) { throw StandIn.NotUnity(); }
        public static Vector3 operator -(Vector3 a) { throw StandIn.NotUnity(); }
        public static Vector3 operator *(Vector3 a, float d) { throw StandIn.NotUnity(); }
        public static bool operator ==(Vector3 lhs, Vector3 rhs) { throw StandIn.NotUnity(); }
        public static bool operator !=(Vector3 lhs, Vector3 rhs) { throw StandIn.NotUnity(); }
        public override bool Equals(object other) { throw StandIn.NotUnity(); }
        public override int GetHashCode() { throw StandIn.NotUnity(); }
    }

    public struct Quaternion
    {
        public float x, y, z, w;
        public Quaternion(float x, float y, float z, float w) { throw StandIn.NotUnity(); }
        public static Quaternion identity { get { throw StandIn.NotUnity(); } }
        public static Quaternion Inverse(Quaternion rotation) { throw StandIn.NotUnity(); }
        public static Quaternion Slerp(Quaternion a, Quaternion b, float t) { throw StandIn.NotUnity(); }
        public static Quaternion LookRotation(Vector3 forward, Vector3 upwards) { throw StandIn.NotUnity(); }
        public static Quaternion operator *(Quaternion lhs, Quaternion rhs) { throw StandIn.NotUnity(); }
        public static Vector3 operator *(Quaternion rotation, Vector3 point) { throw StandIn.NotUnity(); }
        public static bool operator ==(Quaternion lhs, Quaternion rhs) { throw StandIn.NotUnity(); }
        public static bool operator !=(Quaternion lhs, Quaternion rhs) { throw StandIn.NotUnity(); }
        public override bool Equals(object other) { throw StandIn.NotUnity(); }
        public override int GetHashCode() { throw StandIn.NotUnity(); }
    }

    public struct Rect
    {
        public Rect(float x, float y, float width, float height) { throw StandIn.NotUnity(); }
    }

    public static class Mathf
    {
        public static int Clamp(int value, int min, int max) { throw StandIn.NotUnity(); }
        public static float Clamp(float value, float min, float max) { throw StandIn.NotUnity(); }
        public static float Max(float a, float b) { throw StandIn.NotUnity(); }
        public static float Exp(float power) { throw StandIn.NotUnity(); }
    }

    public static class Time
    {
        public static float deltaTime { get { throw StandIn.NotUnity(); } }
        public static float unscaledDeltaTime { get { throw StandIn.NotUnity(); } }
    }

    public static class Debug
    {
        public static void Log(object message) { throw StandIn.NotUnity(); }
        public static void Log(object message, Object context) { throw StandIn.NotUnity(); }
        public static void LogWarning(object message) { throw StandIn.NotUnity(); }
        public static void LogWarning(object message, Object context) { throw StandIn.NotUnity(); }
        public static void LogError(object message) { throw StandIn.NotUnity(); }
        public static void LogError(object message, Object context) { throw StandIn.NotUnity(); }
    }

    public static class Input
    {
        public static bool GetKeyDown(KeyCode key) { throw StandIn.NotUnity(); }
    }

    public static class GUI
    {
        public static void Label(Rect position, string text) { throw StandIn.NotUnity(); }
    }

    /// <summary>Subset of Unity's KeyCode (same numeric values).</summary>
    public enum KeyCode
    {
        None = 0, Backspace = 8, Tab = 9, Return = 13, Escape = 27, Space = 32,
        Alpha0 = 48, Alpha1 = 49, Alpha2 = 50, Alpha3 = 51, Alpha4 = 52, Alpha5 = 53, Alpha6 = 54, Alpha7 = 55, Alpha8 = 56, Alpha9 = 57,
        A = 97, B = 98, C = 99, D = 100, E = 101, F = 102, G = 103, H = 104, I = 105, J = 106, K = 107, L = 108, M = 109,
        N = 110, O = 111, P = 112, Q = 113, R = 114, S = 115, T = 116, U = 117, V = 118, W = 119, X = 120, Y = 121, Z = 122,
        Home = 278, End = 279, F1 = 282, F2 = 283, F3 = 284, F4 = 285, F5 = 286, F6 = 287, F7 = 288, F8 = 289, F9 = 290,
        F10 = 291, F11 = 292, F12 = 293,
    }

    [AttributeUsage(AttributeTargets.Field, Inherited = true, AllowMultiple = false)]
    public class PropertyAttribute : Attribute { }

    [AttributeUsage(AttributeTargets.Field, Inherited = true, AllowMultiple = true)]
    public class HeaderAttribute : PropertyAttribute { public HeaderAttribute(string header) { } }

    [AttributeUsage(AttributeTargets.Field, Inherited = true, AllowMultiple = false)]
    public class TooltipAttribute : PropertyAttribute { public TooltipAttribute(string tooltip) { } }

    [AttributeUsage(AttributeTargets.Field, Inherited = true, AllowMultiple = false)]
    public sealed class RangeAttribute : PropertyAttribute { public RangeAttribute(float min, float max) { } }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class SerializeField : Attribute { }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class AddComponentMenu : Attribute { public AddComponentMenu(string menuName) { } }

    [AttributeUsage(AttributeTargets.Class)]
    public sealed class DisallowMultipleComponent : Attribute { }

    [AttributeUsage(AttributeTargets.Class)]
    public class DefaultExecutionOrder : Attribute { public DefaultExecutionOrder(int order) { } }

    [AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
    public sealed class RequireComponent : Attribute { public RequireComponent(Type requiredComponent) { } }
}
#endif

// Console test runner only: minimal assertion helpers that count passes and failures.
using System;

namespace PoseBridge.ConsoleTests
{
    public static class Check
    {
        public static int Passed, Failed;

        public static void That(bool condition, string what)
        {
            if (condition) Passed++;
            else
            {
                Failed++;
                Console.WriteLine("FAIL " + what);
            }
        }

        public static void Near(double actual, double expected, double tol, string what)
        {
            That(Math.Abs(actual - expected) <= tol, what + ": got " + actual.ToString("R") + ", expected " + expected.ToString("R"));
        }

        public static void Throws<T>(Action a, string what) where T : Exception
        {
            try
            {
                a();
                That(false, what + ": no exception");
            }
            catch (T)
            {
                That(true, what);
            }
            catch (Exception e)
            {
                That(false, what + ": wrong exception " + e.GetType().Name + ": " + e.Message);
            }
        }

        public static int Summary(string name)
        {
            Console.WriteLine((Failed == 0 ? "OK " : "FAILED ") + name + ": " + Passed + " checks passed, " + Failed + " failed");
            return Failed == 0 ? 0 : 1;
        }
    }
}

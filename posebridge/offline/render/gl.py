"""Drawing the posed head with OpenGL: a headless moderngl context (EGL; Mesa's llvmpipe on a machine
without a GPU), one textured, lit mesh, 4x multisampling, read back as premultiplied RGBA.

`create_context` and `gl_unavailable_reason` turn every way of not getting a context (moderngl not
installed, no libEGL, no driver) into one line; `RenderUnavailable` is a PoseBridgeError, so the CLI
prints it without a traceback.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from posebridge.errors import PoseBridgeError
from posebridge.offline.render.camera import Camera
from posebridge.offline.render.mesh import HeadMesh
from posebridge.offline.render.posing import pose_vertices, scan_rotation

INSTALL_HINT = ("pip install 'posebridge[render]' and, on Debian/Ubuntu, apt-get install libegl1 "
                "libegl-mesa0 libgl1-mesa-dri")

VERTEX_SHADER = """
#version 330
uniform mat4 projection;
uniform vec3 offset;
in vec3 in_pos;
in vec3 in_nrm;
in vec2 in_uv;
out vec3 v_pos;
out vec3 v_nrm;
out vec2 v_uv;
void main() {
    vec3 p = in_pos + offset;
    v_pos = p;
    v_nrm = in_nrm;
    v_uv = vec2(in_uv.x, 1.0 - in_uv.y);  // the texture is uploaded top row first
    gl_Position = projection * vec4(p, 1.0);
}
"""

FRAGMENT_SHADER = """
#version 330
uniform sampler2D tex;
uniform vec3 light_dir;
uniform vec3 light_rgb;
uniform vec3 ambient_rgb;
uniform float specular;
in vec3 v_pos;
in vec3 v_nrm;
in vec2 v_uv;
out vec4 f_color;
void main() {
    vec3 n = normalize(v_nrm);
    vec3 albedo = texture(tex, v_uv).rgb;
    float diffuse = max(dot(n, light_dir), 0.0);
    vec3 h = normalize(light_dir + normalize(-v_pos));
    float shine = specular * pow(max(dot(n, h), 0.0), 24.0) * step(0.0, diffuse);
    f_color = vec4(clamp(albedo * (ambient_rgb + light_rgb * diffuse) + light_rgb * shine, 0.0, 1.0), 1.0);
}
"""


class RenderUnavailable(PoseBridgeError):
    """No OpenGL context can be made here (the reason is one line)."""


@dataclass(frozen=True)
class Light:
    """One directional light (towards the light, eye frame) plus ambient, linear RGB in 0..1."""

    direction: tuple[float, float, float] = (0.3, 0.4, 1.0)
    colour: tuple[float, float, float] = (0.85, 0.85, 0.85)
    ambient: tuple[float, float, float] = (0.35, 0.35, 0.35)
    specular: float = 0.08


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]


def create_context():
    """A standalone (headless) moderngl context on EGL, or RenderUnavailable."""
    try:
        import moderngl
    except ImportError:
        raise RenderUnavailable(f"rendering needs moderngl: {INSTALL_HINT}") from None
    try:
        return moderngl.create_standalone_context(backend="egl")
    except Exception as exc:  # moderngl/glcontext raise plain Exceptions with multi-line text
        raise RenderUnavailable(f"no OpenGL context (EGL): {_one_line(exc)}; {INSTALL_HINT}") from None


@functools.lru_cache(maxsize=1)
def gl_unavailable_reason() -> str | None:
    """None when a context can be made here, else the one-line reason (cached per process)."""
    try:
        ctx = create_context()
    except RenderUnavailable as exc:
        return str(exc)
    ctx.release()
    return None


class HeadRenderer:
    """Renders the head scan at a pose into an RGBA image (premultiplied alpha: the background is
    transparent). One per thread; call `close` (or use it as a context manager) to free the context."""

    def __init__(self, head: HeadMesh, camera: Camera, samples: int = 4) -> None:
        self.head = head
        self.camera = camera
        self.ctx = create_context()
        ctx = self.ctx
        w, h = camera.width, camera.height
        samples = min(samples, ctx.max_samples) if samples > 1 else 0
        self.prog = ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        self.prog["projection"].write(camera.projection().T.astype("f4").tobytes())
        self.vbo_pos = ctx.buffer(reserve=head.positions.astype("f4").nbytes, dynamic=True)
        self.vbo_nrm = ctx.buffer(reserve=head.normals.astype("f4").nbytes, dynamic=True)
        self.vbo_uv = ctx.buffer(head.uvs.astype("f4").tobytes())
        self.ibo = ctx.buffer(head.indices.astype("u4").tobytes())
        buffers = [(self.vbo_pos, "3f", "in_pos"), (self.vbo_nrm, "3f", "in_nrm"),
                   (self.vbo_uv, "2f", "in_uv")]
        self.vao = ctx.vertex_array(self.prog, buffers, self.ibo, index_element_size=4)
        tex = np.ascontiguousarray(head.texture)
        self.texture = ctx.texture((tex.shape[1], tex.shape[0]), 3, tex.tobytes())
        self.texture.build_mipmaps()
        self.texture.use(0)
        self.prog["tex"].value = 0
        self.fbo_ms = ctx.framebuffer(color_attachments=[ctx.renderbuffer((w, h), 4, samples=samples)],
                                      depth_attachment=ctx.depth_renderbuffer((w, h), samples=samples))
        self.fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer((w, h), 4)])

    def render(self, yaw: float, pitch: float, roll: float, offset: tuple[float, float] = (0.0, 0.0),
               distance_m: float = 0.6, light: Light = Light()) -> np.ndarray:
        """(H, W, 4) uint8 RGBA, top row first: the head at dataset angles (degrees), its face centre
        at `offset` (frame fractions) and `distance_m` from the camera."""
        import moderngl

        pos, nrm = pose_vertices(self.head.positions, self.head.normals, scan_rotation(yaw, pitch, roll))
        self.vbo_pos.write(pos.tobytes())
        self.vbo_nrm.write(nrm.tobytes())
        d = np.asarray(light.direction, np.float64)
        self.prog["light_dir"].value = tuple(float(v) for v in d / np.linalg.norm(d))
        self.prog["light_rgb"].value = tuple(float(v) for v in light.colour)
        self.prog["ambient_rgb"].value = tuple(float(v) for v in light.ambient)
        self.prog["specular"].value = float(light.specular)
        self.prog["offset"].value = tuple(float(v) for v in self.camera.placement(offset, distance_m))
        self.fbo_ms.use()
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.ctx.clear(0.0, 0.0, 0.0, 0.0)
        self.vao.render(moderngl.TRIANGLES)
        self.ctx.copy_framebuffer(self.fbo, self.fbo_ms)
        data = self.fbo.read(components=4, alignment=1)
        img = np.frombuffer(data, np.uint8).reshape(self.camera.height, self.camera.width, 4)
        return img[::-1].copy()

    def close(self) -> None:
        self.ctx.release()

    def __enter__(self) -> HeadRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

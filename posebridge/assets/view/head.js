// The 3D head turned by the stream's q. q is Unity's frame (left-handed: x = the head's right, y up,
// z out of the face, docs/protocol.md); three.js is right-handed with the head facing the viewer (+z),
// so the head's right is -x here. That change of axes, diag(-1, 1, 1), maps q = (x, y, z, w) to
// (x, -y, -z, w). The mesh is the shipped head scan (CC BY 3.0, see head/README.md), read from its
// .glb without a loader library; without WebGL a 2D axes gizmo is drawn instead.
import * as THREE from "./three.module.min.js";

const GLB_MAGIC = 0x46546c67, CHUNK_JSON = 0x4e4f534a, CHUNK_BIN = 0x004e4942;
const COMPONENTS = { SCALAR: 1, VEC2: 2, VEC3: 3, VEC4: 4 };
const ARRAYS = { 5123: Uint16Array, 5125: Uint32Array, 5126: Float32Array };

function parseGlb(buffer) {
  const view = new DataView(buffer);
  if (view.getUint32(0, true) !== GLB_MAGIC) throw new Error("not a .glb file");
  let offset = 12, json = null, bin = null;
  while (offset < buffer.byteLength) {
    const length = view.getUint32(offset, true), type = view.getUint32(offset + 4, true);
    const start = offset + 8;
    if (type === CHUNK_JSON) json = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, start, length)));
    if (type === CHUNK_BIN) bin = start;
    offset = start + length;
  }
  const accessor = (index) => {
    const acc = json.accessors[index], bv = json.bufferViews[acc.bufferView];
    const Type = ARRAYS[acc.componentType], n = COMPONENTS[acc.type];
    const begin = bin + (bv.byteOffset || 0) + (acc.byteOffset || 0);
    return { array: new Type(buffer.slice(begin, begin + acc.count * n * Type.BYTES_PER_ELEMENT)), size: n };
  };
  const prim = json.meshes[0].primitives[0];
  const geometry = new THREE.BufferGeometry();
  for (const [name, attr] of [["POSITION", "position"], ["NORMAL", "normal"], ["TEXCOORD_0", "uv"]]) {
    if (prim.attributes[name] === undefined) continue;
    const a = accessor(prim.attributes[name]);
    geometry.setAttribute(attr, new THREE.BufferAttribute(a.array, a.size));
  }
  geometry.setIndex(new THREE.BufferAttribute(accessor(prim.indices).array, 1));
  if (!geometry.getAttribute("normal")) geometry.computeVertexNormals();
  return geometry;
}

function webglWorks() {
  try {
    const c = document.createElement("canvas");
    return !!(c.getContext("webgl2") || c.getContext("webgl"));
  } catch (e) {
    return false;
  }
}

export function createHead(container) {
  if (!webglWorks()) return createGizmo(container);
  const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  const width = container.clientWidth || 480, height = container.clientHeight || 360;
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  renderer.setSize(width, height, false);
  container.appendChild(renderer.domElement);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0x0b0d10);
  const camera = new THREE.PerspectiveCamera(30, width / height, 0.1, 100);
  camera.position.set(0, 0.2, 15);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x334455, 1.6));
  const sun = new THREE.DirectionalLight(0xffffff, 1.8);
  sun.position.set(3, 4, 8);
  scene.add(sun);
  const pivot = new THREE.Group();  // turns about the middle of the head, not the shoulders
  scene.add(pivot);
  pivot.add(new THREE.AxesHelper(4.2));  // at rest as on the preview: x red image-right, y green up, z blue out
  let q = new THREE.Quaternion();
  const render = () => {
    pivot.quaternion.copy(q);
    renderer.render(scene, camera);
  };
  fetch("/static/head.glb").then((r) => r.arrayBuffer()).then((buf) => {
    const geometry = parseGlb(buf);
    const texture = new THREE.TextureLoader().load("/static/head.jpg", render);
    texture.colorSpace = THREE.SRGBColorSpace;
    const mesh = new THREE.Mesh(geometry, new THREE.MeshStandardMaterial({ map: texture, roughness: 0.75 }));
    mesh.position.set(0, -1.4, 0);
    pivot.add(mesh);
    render();
  }).catch((e) => console.warn("head model:", e));
  render();
  return {
    kind: "webgl",
    setQuaternion(v) {
      if (!v) return;
      q = new THREE.Quaternion(v[0], -v[1], -v[2], v[3]);
      render();
    },
  };
}

function createGizmo(container) {
  const canvas = document.createElement("canvas");
  canvas.width = 480; canvas.height = 360;
  container.appendChild(canvas);
  const ctx = canvas.getContext("2d");
  return {
    kind: "2d",
    setQuaternion(v) {
      if (!v) return;
      const q = new THREE.Quaternion(v[0], -v[1], -v[2], v[3]);
      ctx.fillStyle = "#0b0d10";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      const colours = ["#ff6b6b", "#51cf66", "#4dabf7"];
      const dirs = [new THREE.Vector3(-1, 0, 0), new THREE.Vector3(0, 1, 0), new THREE.Vector3(0, 0, 1)];
      dirs.forEach((d, i) => {
        d.applyQuaternion(q);
        ctx.strokeStyle = colours[i];
        ctx.lineWidth = 4;
        ctx.beginPath();
        ctx.moveTo(240, 180);
        ctx.lineTo(240 + 120 * d.x, 180 - 120 * d.y);
        ctx.stroke();
      });
      ctx.fillStyle = "#8b949e";
      ctx.fillText("no WebGL here: head axes only", 10, 20);
    },
  };
}

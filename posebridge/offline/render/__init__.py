"""Rendered clips of a head that really turns, with the exact pose of every frame (the `render` extra:
moderngl + NumPy; headless through EGL, Mesa's llvmpipe without a GPU).

One module per job: `mesh` (the head scan's .glb and texture), `posing` (dataset angles -> the head
turned on its neck), `camera` (pinhole camera, placement, projection), `gl` (the OpenGL renderer and its
one-line `RenderUnavailable`), `effects` (backgrounds, light, camera noise), `trajectory` (motion:
presets and seeded random mixes), `clip` (video + truth CSV). Command line:

    python -m posebridge.offline.render clip OUT.mp4 --preset demo --truth OUT.csv
    python -m posebridge.offline.render clip OUT.mp4 --mix 15 --seed 3 --truth OUT.csv
    python -m posebridge.offline.render frame OUT.png --yaw 30 --pitch 10 --roll -5

The head is "Infinite, 3D Head Scan" by Lee Perry-Smith (CC BY 3.0), examples/head-scan/.
"""

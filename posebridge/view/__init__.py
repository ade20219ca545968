"""The live page (`posebridge serve --view`): what the tracker sees, in a browser.

- `address`: the `[HOST:]PORT` the page is served on;
- `guard`: which requests are answered (Host against DNS rebinding, Origin against other sites);
- `feed`: the frame loop's O(1) handoff, the pose history and the camera preview encoded on demand;
- `draw`: the face box and head axes on the preview;
- `controls`: recenter, filter sliders and mirror, through the control socket's own handlers;
- `server`: the HTTP server thread and its routes; the page itself is in posebridge/assets/view/.

docs/daemon.md, "The live page", says what it shows and what it does and does not protect.
"""

/* restora report: the before/after viewer (slider, zoom, pan). No network, no libraries.
   Images live once in the JSON block #restora-images (id -> data URL); elements name them by
   data-img. The viewer compares two of them: drag the bar to compare, scroll or the buttons to
   zoom, drag the picture to pan, arrow keys move the bar. */
(function () {
  "use strict";
  var IMAGES = JSON.parse(document.getElementById("restora-images").textContent);
  var LABELS = JSON.parse(document.getElementById("restora-labels").textContent);
  document.querySelectorAll("img[data-img]").forEach(function (el) {
    var src = IMAGES[el.getAttribute("data-img")];
    if (src) el.src = src;
  });

  var root = document.getElementById("viewer");
  if (!root) return;
  var vp = root.querySelector(".vp");
  var imgA = root.querySelector("img.before");
  var imgB = root.querySelector("img.after");
  var layerA = root.querySelector(".layer.before");
  var handle = root.querySelector(".handle");
  var tagA = root.querySelector(".tag.l");
  var tagB = root.querySelector(".tag.r");
  var selA = document.getElementById("sel-before");
  var selB = document.getElementById("sel-after");
  var zoomOut = root.querySelector(".zoom");
  var cap = root.querySelector(".vcap");

  var st = { pos: 0.5, scale: 1, fit: 1, tx: 0, ty: 0, w: 1, h: 1 };

  var MAX_FIT = 2;  // a small picture is shown at most twice its size until the reader zooms

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  function layout() {
    var W = vp.clientWidth, H = vp.clientHeight;
    // keep the picture on screen: centred when smaller than the view, edges inside otherwise
    var sw = st.w * st.scale, sh = st.h * st.scale;
    st.tx = sw <= W ? (W - sw) / 2 : clamp(st.tx, W - sw, 0);
    st.ty = sh <= H ? (H - sh) / 2 : clamp(st.ty, H - sh, 0);
    var t = "translate(" + st.tx + "px," + st.ty + "px) scale(" + st.scale + ")";
    imgA.style.transform = t;
    imgB.style.transform = t;
    var x = st.pos * W;
    layerA.style.clipPath = "inset(0 " + (W - x) + "px 0 0)";
    handle.style.left = x + "px";
    handle.setAttribute("aria-valuenow", Math.round(st.pos * 100));
    root.setAttribute("data-pos", st.pos.toFixed(3));
    root.setAttribute("data-scale", st.scale.toFixed(3));
    zoomOut.textContent = Math.round(st.scale * 100) + "%";
    vp.classList.toggle("pixels", st.scale > 2.01);
    vp.classList.toggle("zoomed", st.scale > st.fit * 1.001);
  }

  function fit() {
    var W = vp.clientWidth, H = vp.clientHeight;
    st.fit = Math.min(W / st.w, H / st.h, MAX_FIT);
    st.scale = st.fit;
    layout();
  }

  function zoomAt(scale, cx, cy) {
    scale = clamp(scale, Math.min(st.fit, 1), 16);
    var ix = (cx - st.tx) / st.scale, iy = (cy - st.ty) / st.scale;
    st.scale = scale;
    st.tx = cx - ix * scale;
    st.ty = cy - iy * scale;
    layout();
  }
  function zoomCentre(scale) { zoomAt(scale, vp.clientWidth / 2, vp.clientHeight / 2); }

  function setPair(a, b) {
    if (!IMAGES[a] || !IMAGES[b]) return;
    selA.value = a;
    selB.value = b;
    tagA.textContent = LABELS[a] ? LABELS[a].short : a;
    tagB.textContent = LABELS[b] ? LABELS[b].short : b;
    cap.textContent = (LABELS[a] ? LABELS[a].caption : a) + "  |  " + (LABELS[b] ? LABELS[b].caption : b);
    var pending = 2;
    function ready() {
      if (--pending) return;
      st.w = imgB.naturalWidth || imgA.naturalWidth || 1;
      st.h = imgB.naturalHeight || imgA.naturalHeight || 1;
      // both images are shown at the after image's size (super-resolution makes them differ)
      imgA.style.width = st.w + "px"; imgA.style.height = st.h + "px";
      imgB.style.width = st.w + "px"; imgB.style.height = st.h + "px";
      vp.style.setProperty("--ar", (st.w / st.h).toFixed(4));
      vp.style.maxHeight = "min(72vh, " + Math.max(200, st.h * MAX_FIT) + "px)";
      fit();
      root.setAttribute("data-ready", a + " " + b);
    }
    [[imgA, a], [imgB, b]].forEach(function (p) {
      var el = p[0];
      el.onload = ready;
      el.onerror = ready;
      if (el.getAttribute("src") === IMAGES[p[1]] && el.complete) { ready(); }
      else { el.src = IMAGES[p[1]]; }
    });
  }

  // the bar
  var drag = null;
  function posFrom(e) {
    var r = vp.getBoundingClientRect();
    return clamp((e.clientX - r.left) / r.width, 0, 1);
  }
  handle.addEventListener("pointerdown", function (e) {
    drag = { kind: "bar", id: e.pointerId };
    handle.setPointerCapture(e.pointerId);
    e.preventDefault();
    e.stopPropagation();
  });
  handle.addEventListener("pointermove", function (e) {
    if (!drag || drag.kind !== "bar" || drag.id !== e.pointerId) return;
    st.pos = posFrom(e);
    layout();
  });
  function endBar(e) { if (drag && drag.kind === "bar" && drag.id === e.pointerId) drag = null; }
  handle.addEventListener("pointerup", endBar);
  handle.addEventListener("pointercancel", endBar);
  handle.addEventListener("keydown", function (e) {
    var step = e.shiftKey ? 0.1 : 0.02;
    if (e.key === "ArrowLeft") st.pos = clamp(st.pos - step, 0, 1);
    else if (e.key === "ArrowRight") st.pos = clamp(st.pos + step, 0, 1);
    else if (e.key === "Home") st.pos = 0;
    else if (e.key === "End") st.pos = 1;
    else return;
    e.preventDefault();
    layout();
  });

  // pan (one pointer) and pinch (two)
  var pointers = {};
  var pinch = null;
  vp.addEventListener("pointerdown", function (e) {
    if (e.target === handle) return;
    pointers[e.pointerId] = { x: e.clientX, y: e.clientY };
    vp.setPointerCapture(e.pointerId);
    var ids = Object.keys(pointers);
    if (ids.length === 2) {
      var p = pointers[ids[0]], q = pointers[ids[1]];
      pinch = { d: Math.hypot(p.x - q.x, p.y - q.y) || 1, scale: st.scale };
    }
    vp.classList.add("panning");
  });
  vp.addEventListener("pointermove", function (e) {
    var prev = pointers[e.pointerId];
    if (!prev) return;
    var ids = Object.keys(pointers);
    if (ids.length === 1) {
      st.tx += e.clientX - prev.x;
      st.ty += e.clientY - prev.y;
      pointers[e.pointerId] = { x: e.clientX, y: e.clientY };
      layout();
    } else if (ids.length === 2 && pinch) {
      pointers[e.pointerId] = { x: e.clientX, y: e.clientY };
      var p = pointers[ids[0]], q = pointers[ids[1]];
      var r = vp.getBoundingClientRect();
      zoomAt(pinch.scale * Math.hypot(p.x - q.x, p.y - q.y) / pinch.d, (p.x + q.x) / 2 - r.left, (p.y + q.y) / 2 - r.top);
    }
  });
  function endPan(e) {
    delete pointers[e.pointerId];
    if (Object.keys(pointers).length < 2) pinch = null;
    if (!Object.keys(pointers).length) vp.classList.remove("panning");
  }
  vp.addEventListener("pointerup", endPan);
  vp.addEventListener("pointercancel", endPan);
  vp.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = vp.getBoundingClientRect();
    zoomAt(st.scale * Math.pow(1.0015, -e.deltaY), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  vp.addEventListener("dblclick", function (e) {
    var r = vp.getBoundingClientRect();
    if (st.scale > st.fit * 1.001) fit(); else zoomAt(Math.max(1, st.fit * 2), e.clientX - r.left, e.clientY - r.top);
  });

  root.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      var z = b.getAttribute("data-zoom");
      if (z === "fit") fit();
      else if (z === "in") zoomCentre(st.scale * 1.5);
      else if (z === "out") zoomCentre(st.scale / 1.5);
      else zoomCentre(parseFloat(z));
    });
  });
  root.querySelector("[data-open]").addEventListener("click", function () {
    // a data URL cannot be opened as a page; a blob URL can
    fetch(IMAGES[selB.value]).then(function (r) { return r.blob(); }).then(function (blob) {
      window.open(URL.createObjectURL(blob), "_blank");
    });
  });
  selA.addEventListener("change", function () { setPair(selA.value, selB.value); });
  selB.addEventListener("change", function () { setPair(selA.value, selB.value); });
  document.querySelectorAll("[data-compare]").forEach(function (b) {
    b.addEventListener("click", function () {
      var p = b.getAttribute("data-compare").split(" ");
      setPair(p[0], p[1]);
      root.scrollIntoView({ behavior: "smooth", block: "start" });
    });
  });
  window.addEventListener("resize", function () {
    var wasFit = st.scale <= st.fit * 1.001;
    var W = vp.clientWidth, H = vp.clientHeight;
    st.fit = Math.min(W / st.w, H / st.h, MAX_FIT);
    if (wasFit) st.scale = st.fit;
    layout();
  });
  window.restoraViewer = { setPair: setPair, state: st, fit: fit, zoomCentre: zoomCentre };
  setPair(root.getAttribute("data-before"), root.getAttribute("data-after"));
})();

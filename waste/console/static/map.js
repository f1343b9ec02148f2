/* Draw a console map: GeoJSON from the page's data island, styled by properties.layer.
   The vector layers are SVG paths (class wc-<layer>), drawn whether or not tiles load. */
(function () {
  "use strict";
  var holder = document.getElementById("map");
  var island = document.getElementById("map-data");
  if (!holder || !island || typeof L === "undefined") { return; }
  var data = JSON.parse(island.textContent);

  var BANDS = { "stopped": "#6b6b6b", "slow": "#1b9e77", "medium": "#e6ab02", "fast": "#d95f02", "very fast": "#a50f15" };
  var STYLE = {
    corridor: { color: "#5b9bd5", weight: 1, fillColor: "#9cc3ea", fillOpacity: 0.25, opacity: 0.6 },
    route: { color: "#0b5cad", weight: 3, dashArray: "8 6", opacity: 0.9 },
    site: { color: "#2e7d32", weight: 2, fillColor: "#66bb6a", fillOpacity: 0.2 },
    zone: { color: "#c62828", weight: 2, fillColor: "#ef5350", fillOpacity: 0.2, dashArray: "4 4" },
    excursion: { color: "#7b1fa2", weight: 14, opacity: 0.3, lineCap: "round" }
  };
  var POINTS = {
    stop: { radius: 7, color: "#111", weight: 2, fillColor: "#fff", fillOpacity: 1 },
    seal: { radius: 9, color: "#7f0000", weight: 3, fillColor: "#ff1744", fillOpacity: 0.95 },
    lock: { radius: 5, color: "#37474f", weight: 1, fillColor: "#90a4ae", fillOpacity: 0.9 },
    alert: { radius: 11, color: "#b42318", weight: 3, fillColor: "#fff", fillOpacity: 0.2 },
    track: { radius: 4, color: "#0b5cad", weight: 1, fillColor: "#0b5cad", fillOpacity: 0.8 }
  };
  var ORDER = ["zone", "site", "corridor", "route", "excursion", "track", "lock", "stop", "seal", "alert"];

  function timeColour(f) {
    var t = Math.max(0, Math.min(1, f));
    var a = t < 0.5 ? [44, 123, 182] : [253, 174, 97];
    var b = t < 0.5 ? [253, 174, 97] : [215, 25, 28];
    var k = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    var c = a.map(function (v, i) { return Math.round(v + (b[i] - v) * k); });
    return "rgb(" + c.join(",") + ")";
  }
  var mode = "speed";
  function trackStyle(p) {
    return { color: mode === "time" ? timeColour(p.t_frac || 0) : (BANDS[p.band] || "#0b5cad"), weight: 4, opacity: 0.95 };
  }

  var map = L.map(holder, { preferCanvas: false, zoomSnap: 0.5 });
  L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
    maxZoom: 19, attribution: "&copy; OpenStreetMap contributors"
  }).addTo(map);

  var drawn = [];
  var focus = [];
  var trackLayers = [];
  ORDER.forEach(function (layer) {
    var features = data.features.filter(function (f) { return f.properties.layer === layer; });
    if (!features.length) { return; }
    var group = L.geoJSON({ type: "FeatureCollection", features: features }, {
      style: function (f) {
        var s = layer === "track" ? trackStyle(f.properties) : (STYLE[layer] || {});
        return Object.assign({ className: "wc-" + layer }, s);
      },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, Object.assign({ className: "wc-" + layer }, POINTS[layer] || POINTS.track));
      },
      onEachFeature: function (f, l) {
        if (f.properties.label) { l.bindTooltip(String(f.properties.label)); }
        if (f.properties.focus) { focus.push(l); }
      }
    }).addTo(map);
    if (layer === "track") { trackLayers.push(group); }
    if (layer !== "zone") { drawn.push(group); }
  });

  function boundsOf(layers) {
    var bounds = null;
    layers.forEach(function (l) {
      var b = l.getBounds ? l.getBounds() : L.latLngBounds(l.getLatLng(), l.getLatLng());
      if (b.isValid()) { bounds = bounds ? bounds.extend(b) : L.latLngBounds(b.getSouthWest(), b.getNorthEast()); }
    });
    return bounds;
  }
  // An alert's map opens on the alert (about 1 km around it); a trip's on the whole trip.
  var near = boundsOf(focus);
  var all = boundsOf(drawn);
  if (near) {
    var c = near.getCenter();
    near = near.extend(L.latLngBounds([c.lat - 0.008, c.lng - 0.008], [c.lat + 0.008, c.lng + 0.008]));
    map.fitBounds(near, { padding: [20, 20], maxZoom: 16 });
  } else if (all) {
    map.fitBounds(all, { padding: [20, 20], maxZoom: 16 });
  } else {
    map.setView([30, 115], 5);
  }

  var picker = document.getElementById("track-colour");
  if (picker) {
    picker.addEventListener("change", function () {
      mode = picker.value;
      trackLayers.forEach(function (g) { g.setStyle(function (f) { return trackStyle(f.properties); }); });
      holder.setAttribute("data-colour", mode);
    });
  }
  holder.setAttribute("data-ready", "1");
})();

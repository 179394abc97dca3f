"""Makes the procedural inputs of two docs images (numpy + Pillow; nothing downloaded):
a 24-frame "desk" clip as JPEGs with a HaMeR-style dump for it (`desk_hands.json`), and an
equirectangular sky (`sky.hdr`: blue sky, a warm sun at azimuth 60 deg / elevation 30 deg,
brown ground). Run in an empty folder, then (docs/relighting.md, docs/viewer.md):

    xhand render --all --pose desk_hands.json --pose-camera --background-image frames \
        --fps 24 --out desk.mp4                      # frame 12 -> docs/over-footage.png
    xhand render --preset open --width 334 --height 512 --out sh.png
    xhand render --preset open --width 334 --height 512 --env sky.hdr --env-rotation 0 --out env0.png
    xhand render --preset open --width 334 --height 512 --env sky.hdr --env-rotation 180 --out env180.png
"""
import json
import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))
W, H = 640, 480


def desk(t, noise):
    y, x = np.mgrid[0:H, 0:W].astype(float)
    cx = 120 + 2 * t
    wall = np.stack([0.55 + 0.15 * x / W, 0.5 + 0.1 * x / W, 0.45 + 0.05 * y / H], -1)
    table = np.stack([0.45 - 0.1 * (y - 330) / 150, 0.3 - 0.05 * (y - 330) / 150, 0.18 + 0 * y], -1)
    img = np.where((y > 330)[..., None], table, wall)
    img = img + np.exp(-(((x - cx) / 110) ** 2 + ((y - 90) / 80) ** 2))[..., None] * [0.35, 0.3, 0.15]
    im = Image.fromarray((np.clip(img + noise, 0, 1) * 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    d.rectangle([470, 250, 560, 335], fill=(70, 90, 120))
    d.ellipse([cx - 30, 60, cx + 30, 120], fill=(255, 240, 200))
    return im.filter(ImageFilter.GaussianBlur(1.2))


def main():
    base = json.load(open(os.path.join(HERE, "..", "docs", "examples", "hamer_peace.json")))
    noise = np.random.default_rng(7).normal(0, 0.012, (H, W, 3))
    os.makedirs("frames", exist_ok=True)
    dump = {}
    for t in range(24):
        name = f"desk_{t:02d}.jpg"
        desk(t, noise).save(os.path.join("frames", name), quality=90)
        a = 0.35 * math.sin(t / 23 * math.pi)
        hand = dict(base, focal_length=[1400.0, 1400.0], img_size=[640.0, 480.0])
        hand["pred_cam_t_full"] = [0.03 - 0.04 * t / 23, 0.02, 1.1]
        hand["pred_mano_params"] = dict(base["pred_mano_params"])
        hand["pred_mano_params"]["global_orient"] = [
            [[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]]
        ]
        dump[name] = [hand]
    json.dump(dump, open("desk_hands.json", "w"))

    h, w = 128, 256
    v, u = np.mgrid[0:h, 0:w].astype(float)
    th, ph = (v + 0.5) / h * np.pi, (u + 0.5) / w * 2 * np.pi
    sky = np.where((th < np.pi / 2)[..., None], [0.5, 0.7, 1.2], [0.25, 0.18, 0.12]) * np.ones((h, w, 3))
    d = np.stack([np.sin(th) * np.cos(ph), np.cos(th), np.sin(th) * np.sin(ph)], -1)
    el, az = math.radians(30), math.radians(60)
    sun = np.array([math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az)])
    sky += np.clip(d @ sun, 0, 1)[..., None] ** 64 * [40, 32, 20]
    # Radiance RGBE, flat scanlines.
    m = sky.max(-1)
    e = np.ceil(np.log2(np.maximum(m, 1e-32)))
    scale = np.where(m > 1e-32, 256.0 / np.exp2(e), 0)
    rgb = np.clip(sky * scale[..., None], 0, 255).astype(np.uint8)
    rgbe = np.concatenate([rgb, np.where(m > 1e-32, e + 128, 0)[..., None].astype(np.uint8)], -1)
    with open("sky.hdr", "wb") as f:
        f.write(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y %d +X %d\n" % (h, w))
        f.write(rgbe.tobytes())
    print("wrote frames/, desk_hands.json, sky.hdr", file=sys.stderr)


if __name__ == "__main__":
    main()

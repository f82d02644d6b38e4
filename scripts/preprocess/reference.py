#!/usr/bin/python3
"""Reference outputs of InternVL's dynamic_preprocess (VOLMO's copy), for the preprocessing parity tests.

    /usr/bin/python3 scripts/preprocess/reference.py    # writes fixtures/preprocess/*

- tiling-table.json: candidate-grid order (CPython set order sorted by area) for every (min, max) with max <= 12,
  and the chosen grid for a table of image sizes (the algorithm below is InternVL's, re-typed).
- synthetic images (PNG and JPEG) and, per image, the Pillow BICUBIC tiles stacked vertically as PNG (uint8, before
  ToTensor/Normalize) - compare grey levels against the TypeScript pipeline.
- normalize-lut.json: float32 ToTensor + Normalize(ImageNet mean/std) of every uint8 value, computed in float32.
"""
import json
import os

import numpy as np
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', '..', 'fixtures', 'preprocess')


def target_ratios(min_num, max_num):
    ratios = set((i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                 if i * j <= max_num and i * j >= min_num)
    return sorted(ratios, key=lambda x: x[0] * x[1])


def closest(aspect_ratio, ratios, width, height, image_size):
    best_diff = float('inf')
    best = (1, 1)
    area = width * height
    for ratio in ratios:
        diff = abs(aspect_ratio - ratio[0] / ratio[1])
        if diff < best_diff:
            best_diff = diff
            best = ratio
        elif diff == best_diff:
            if area > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
                best = ratio
    return best


def plan(width, height, min_num=1, max_num=6, image_size=448, use_thumbnail=True):
    ratios = target_ratios(min_num, max_num)
    r = closest(width / height, ratios, width, height, image_size)
    blocks = r[0] * r[1]
    return {'grid': list(r), 'tiles': blocks + (1 if use_thumbnail and blocks != 1 else 0)}


def dynamic_preprocess(image, min_num=1, max_num=6, image_size=448, use_thumbnail=True):
    w, h = image.size
    r = closest(w / h, target_ratios(min_num, max_num), w, h, image_size)
    tw, th = image_size * r[0], image_size * r[1]
    resized = image.resize((tw, th))  # default filter: BICUBIC
    out = []
    for i in range(r[0] * r[1]):
        box = ((i % (tw // image_size)) * image_size, (i // (tw // image_size)) * image_size,
               ((i % (tw // image_size)) + 1) * image_size, ((i // (tw // image_size)) + 1) * image_size)
        out.append(resized.crop(box))
    if use_thumbnail and len(out) != 1:
        out.append(image.resize((image_size, image_size)))
    return out, r


def synthetic(w, h, seed, noise):
    rnd = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / (w / 7.0)) * np.cos(y / (h / 5.0))
    g = 255 * x / max(w - 1, 1)
    b = 255 * ((x // max(w // 11, 3) + y // max(h // 9, 3)) % 2)  # hard edges
    img = np.stack([r, g, b], -1) + rnd.normal(0, noise, (h, w, 3))
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), 'RGB')
    d = ImageDraw.Draw(im)
    d.ellipse((w * 0.3, h * 0.3, w * 0.6, h * 0.7), fill=(200, 60, 40), outline=(255, 255, 255), width=3)
    d.line((0, h - 1, w - 1, 0), fill=(0, 0, 0), width=2)
    return im


IMAGES = [  # name, size, format, image_size used for the tiles, noise sigma
    ('wide-png', (530, 400), 'PNG', 112, 6),
    ('square-jpeg', (1000, 1000), 'JPEG', 112, 6),
    ('tall-png-upscale', (90, 200), 'PNG', 112, 6),
    ('fundus-like-jpeg', (1200, 900), 'JPEG', 448, 0),
]

SIZES = [(448, 448), (633, 633), (634, 634), (800, 600), (600, 800), (1536, 1024), (3888, 2592), (2124, 2056),
         (1000, 1000), (100, 100), (1, 1), (1, 1000), (1000, 1), (4000, 3000), (3000, 4000), (2000, 1000),
         (1000, 2000), (448, 896), (896, 448), (500, 1000), (3000, 1000), (5000, 1000), (6000, 1000), (7000, 1000),
         (896, 896), (640, 480), (512, 512), (200, 300), (300, 200), (1344, 896), (1792, 448), (448, 1344),
         (1440, 1080), (1920, 1080), (1080, 1920), (3024, 4032), (2560, 1920), (768, 576), (1296, 972)]


def main():
    os.makedirs(OUT, exist_ok=True)
    orders = {'%d-%d' % (lo, hi): [list(r) for r in target_ratios(lo, hi)]
              for hi in range(1, 13) for lo in range(1, hi + 1)}
    cases = []
    for (w, h) in SIZES:
        for max_num in (1, 4, 6, 12):
            cases.append({'width': w, 'height': h, 'maxTiles': max_num, **plan(w, h, 1, max_num)})
    cases.append({'width': 800, 'height': 600, 'minTiles': 2, 'maxTiles': 6, **plan(800, 600, 2, 6)})
    cases.append({'width': 448, 'height': 448, 'minTiles': 3, 'maxTiles': 9, **plan(448, 448, 3, 9)})
    cases.append({'width': 100, 'height': 100, 'maxTiles': 6, 'imageSize': 32, **plan(100, 100, 1, 6, 32)})
    cases.append({'width': 800, 'height': 600, 'maxTiles': 6, 'useThumbnail': False, **plan(800, 600, 1, 6, 448, False)})
    with open(os.path.join(OUT, 'tiling-table.json'), 'w') as f:
        json.dump({'generator': 'scripts/preprocess/reference.py', 'candidateOrders': orders, 'cases': cases}, f)
        f.write('\n')

    meta = []
    for i, (name, size, fmt, image_size, noise) in enumerate(IMAGES):
        im = synthetic(size[0], size[1], i, noise)
        ext = 'png' if fmt == 'PNG' else 'jpg'
        src = os.path.join(OUT, '%s.%s' % (name, ext))
        if fmt == 'JPEG':
            im.save(src, 'JPEG', quality=92)
        else:
            im.save(src, 'PNG')
        loaded = Image.open(src).convert('RGB')
        tiles, grid = dynamic_preprocess(loaded, image_size=image_size)
        stack = Image.new('RGB', (image_size, image_size * len(tiles)))
        for k, t in enumerate(tiles):
            stack.paste(t, (0, k * image_size))
        stack.save(os.path.join(OUT, '%s.pil-tiles.png' % name), 'PNG', optimize=True)
        meta.append({'name': name, 'file': '%s.%s' % (name, ext), 'width': size[0], 'height': size[1],
                     'imageSize': image_size, 'grid': list(grid), 'tiles': len(tiles)})
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    v = np.arange(256, dtype=np.float32)[:, None] / np.float32(255)
    lut = (v - mean) / std
    with open(os.path.join(OUT, 'images.json'), 'w') as f:
        json.dump({'generator': 'scripts/preprocess/reference.py', 'pillow': Image.__version__, 'images': meta}, f, indent=1)
        f.write('\n')
    with open(os.path.join(OUT, 'normalize-lut.json'), 'w') as f:
        json.dump({'mean': [0.485, 0.456, 0.406], 'std': [0.229, 0.224, 0.225],
                   'lut': [[float(lut[k, c]) for k in range(256)] for c in range(3)]}, f)
        f.write('\n')


if __name__ == '__main__':
    main()


def write_candidate_module():
    """src/model/preprocess/candidate-grids.ts: CPython's candidate order for every (min, max <= 12)."""
    lines = ['// Generated by scripts/preprocess/reference.py - do not edit.',
             '// InternVL dynamic_preprocess candidate grids [cols, rows] in CPython order: a set of (i, j) sorted',
             '// by i*j (stable), so equal-area grids keep the set iteration order. Key: `${minTiles}-${maxTiles}`.',
             'export const CANDIDATE_GRIDS: Readonly<Record<string, string>> = {']
    for hi in range(1, 13):
        for lo in range(1, hi + 1):
            lines.append("  '%d-%d': '%s'," % (lo, hi, ' '.join('%dx%d' % r for r in target_ratios(lo, hi))))
    lines.append('};')
    path = os.path.join(HERE, '..', '..', 'src', 'model', 'preprocess', 'candidate-grids.ts')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


write_candidate_module()

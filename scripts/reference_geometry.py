#!/usr/bin/env python3
"""Reference geometry of each family's Hugging Face image processor, for
tests/data/reference_geometry.json (read by tests/it/faithfulness.rs).

Run once by a developer, never by the tests (no download, no torch):

    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install transformers==4.49.0 numpy
    /tmp/refenv/bin/python scripts/reference_geometry.py > tests/data/reference_geometry.json

Parameters are the processors' published ones (preprocessor_config.json of
the model named per family), except where the pinned mtmd sets its own
(noted per family): Tessera follows mtmd, which is what encodes.
"""
import json

import numpy as np
from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas
from transformers.models.idefics3.image_processing_idefics3 import (
    get_resize_output_image_size as idefics3_resize,
)
from transformers.models.pixtral.image_processing_pixtral import get_resize_output_image_size
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

SIZES = {
    "tiny": (30, 30),
    "panorama": (4000, 500),
    "receipt": (600, 3000),
    "square": (1000, 1000),
    "photo 4:3": (640, 480),
    "screenshot 4:3": (1024, 768),
    "16:9": (1920, 1080),
    "12 MP": (4032, 3024),
}


def qwen(w, h, min_px, max_px):
    # Qwen2-VL-7B-Instruct publishes min_pixels 3136, max_pixels 12845056;
    # the pinned mtmd uses 8..4096 tokens of 28x28 pixels instead.
    rh, rw = smart_resize(h, w, factor=28, min_pixels=min_px, max_pixels=max_px)
    return {"width": rw, "height": rh, "tokens": (rw // 28) * (rh // 28)}


def pixtral(w, h):
    # pixtral-12b: longest_edge 1024, patch 16; one [IMG_BREAK]/[IMG_END] per row.
    rh, rw = get_resize_output_image_size(np.zeros((h, w, 3), np.uint8), (1024, 1024), (16, 16))
    return {"width": rw, "height": rh, "tokens": (rw // 16) * (rh // 16) + rh // 16}


def internvl(w, h):
    # InternVL 2.5/3: 448 px tiles, 1..12 of them, plus a thumbnail when 2+.
    cols, rows = get_optimal_tiled_canvas((h, w), (448, 448), 1, 12)
    return {"cols": cols, "rows": rows}


def idefics3(w, h, longest=2048, slice_=512):
    # SmolVLM: resize so the longer side is `longest` (never past it),
    # then round both sides up to whole 512 px slices.
    rh, rw = idefics3_resize(np.zeros((h, w, 3), np.uint8), longest)
    return {"cols": -(-rw // slice_), "rows": -(-rh // slice_)}


def main():
    rows = []
    for name, (w, h) in SIZES.items():
        row = {"name": name, "width": w, "height": h}
        try:
            row["qwen2vl_mtmd"] = qwen(w, h, 8 * 784, 4096 * 784)
            row["qwen2vl_published"] = qwen(w, h, 3136, 12845056)
        except ValueError as e:
            row["qwen2vl_error"] = str(e)
        row["pixtral"] = pixtral(w, h)
        row["internvl"] = internvl(w, h)
        row["smolvlm"] = idefics3(w, h)
        row["gemma3"] = {"width": 896, "height": 896, "tokens": 256}
        rows.append(row)
    print(json.dumps({"transformers": "4.49.0", "sizes": rows}, indent=1))


if __name__ == "__main__":
    main()

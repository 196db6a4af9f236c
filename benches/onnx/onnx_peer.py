#!/usr/bin/env python3
"""The ONNX Runtime peer of `cx-bench kernel` (issue 13, goal 6).

Builds the kernel bench's network (a model file written by
`cx-bench kernel --export DIR`: `Linear -> Leaky -> Linear -> Leaky`, LIF
with reset by subtraction, direct input encoding, T steps) as an ONNX graph
unrolled over T:

    cur1 = Gemm(x, W1, b1)                       once: the input is the same at every step
    per step t and layer l:
      r     = Cast(Greater(mem_prev, thr))       reset from the previous membrane
      mem   = Add(Mul(beta, mem_prev), cur) - Mul(r, thr)
      spk   = Cast(Greater(mem, thr))            the reported membrane is not yet reset
      cur2  = Gemm(spk1 * g1, W2, b2)            layer 2's current from layer 1's spikes
    counts = sum over t of spk2;  mem_last = mem2 at the last step

(step 0 starts from mem = 0, so its reset is 0: it is mem = cur.) These are
the scalar reference kernel's equations (backends/src/scalar.rs).

Checks the graph against the scalar reference's outputs in the exported
`.ref.json` (spike counts equal on every row whose membranes, every layer
and step, stay at least 1e-4 from threshold: Gemm's summation order is not
the reference's, so a membrane closer than that may round the other way),
then times it with onnxruntime on one intra-op and one inter-op thread,
sequential execution, all graph optimisations, at each batch size: µs per
sample, median over repeats. Prints JSON.

Needs: onnxruntime onnx numpy safetensors (see benches/onnx/README.md).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors import safe_open

MARGIN = 1e-4


def load_model(path):
    with safe_open(path, "np") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata() or {}
    layers = []
    n = 1
    while f"fc{n}.weight" in tensors:
        reset = int(tensors[f"lif{n}.reset_mechanism_val"])
        if reset != 0:
            sys.exit(f"layer {n}: only reset by subtraction (0) is exported, got {reset}")
        layers.append(
            {
                "weight": tensors[f"fc{n}.weight"].astype(np.float32),  # [out, in]
                "bias": tensors[f"fc{n}.bias"].astype(np.float32),
                "beta": np.asarray(tensors[f"lif{n}.beta"], np.float32),
                "threshold": np.asarray(tensors[f"lif{n}.threshold"], np.float32),
                "graded": float(tensors[f"lif{n}.graded_spikes_factor"]),
            }
        )
        n += 1
    return layers, int(meta.get("steps", "8"))


def build_graph(layers, steps, with_margin):
    """The unrolled graph; `with_margin` adds output `margin`: per row, the
    least |mem - thr| over every layer and step (for the check only)."""
    nodes, inits = [], []
    counter = [0]

    def name(base):
        counter[0] += 1
        return f"{base}_{counter[0]}"

    def const(base, value):
        n = name(base)
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), n))
        return n

    def node(op, inputs, **attrs):
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    params = []
    for i, layer in enumerate(layers):
        params.append(
            {
                "w": const(f"W{i + 1}", layer["weight"]),
                "b": const(f"b{i + 1}", layer["bias"]),
                "beta": const(f"beta{i + 1}", layer["beta"]),
                "thr": const(f"thr{i + 1}", layer["threshold"]),
                "g": layer["graded"],
            }
        )

    def gemm(x, p):
        return node("Gemm", [x, p["w"], p["b"]], transB=1)

    def lif(mem_prev, cur, p):
        if mem_prev is None:  # step 0: mem starts at 0, no reset
            mem = cur
        else:
            r = node("Cast", [node("Greater", [mem_prev, p["thr"]])], to=TensorProto.FLOAT)
            decayed = node("Mul", [p["beta"], mem_prev])
            mem = node("Sub", [node("Add", [decayed, cur]), node("Mul", [r, p["thr"]])])
        spk = node("Cast", [node("Greater", [mem, p["thr"]])], to=TensorProto.FLOAT)
        return mem, spk

    cur1 = gemm("x", params[0])
    mems = [None] * len(layers)
    count = None
    margins = []
    for _t in range(steps):
        spk = None
        for l, p in enumerate(params):
            if l == 0:
                cur = cur1
            else:
                prev_g = params[l - 1]["g"]
                inp = spk if prev_g == 1.0 else node("Mul", [spk, const("g", prev_g)])
                cur = gemm(inp, p)
            mems[l], spk = lif(mems[l], cur, p)
            if with_margin:
                gap = node("Abs", [node("Sub", [mems[l], p["thr"]])])
                margins.append(node("ReduceMin", [gap], axes=[1], keepdims=0))
        count = spk if count is None else node("Add", [count, spk])
    outputs = [("counts", count), ("mem_last", mems[-1])]
    if with_margin:
        outputs.append(("margin", node("Min", margins)))
    graph_outputs = []
    for out_name, src in outputs:
        nodes.append(helper.make_node("Identity", [src], [out_name]))
        shape = ["B"] if out_name == "margin" else ["B", layers[-1]["weight"].shape[0]]
        graph_outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(
        nodes,
        "cx_snn_unrolled",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", layers[0]["weight"].shape[1]])],
        graph_outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def session(model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )


def check(layers, steps, ref):
    sess = session(build_graph(layers, steps, with_margin=True))
    x = np.asarray(ref["inputs"], np.float32)
    counts, mem_last, margin = sess.run(None, {"x": x})
    want = np.asarray(ref["spike_count"], np.float32)
    want_mem = np.asarray(ref["mem_last"], np.float32)
    clear = margin >= MARGIN
    equal = (counts == want).all(axis=1)
    mem_err = np.abs(mem_last - want_mem).max(axis=1)
    return {
        "rows": int(x.shape[0]),
        "rows_clear_of_threshold": int(clear.sum()),
        "rows_counts_equal": int(equal.sum()),
        "rows_clear_and_equal": int((clear & equal).sum()),
        "max_mem_last_abs_err_clear_rows": float(mem_err[clear].max()) if clear.any() else None,
        "passed": bool(equal[clear].all()) and bool(clear.any()),
    }


def time_batch(sess, x, repeats, repeat_ms):
    feed = {"x": x}
    out = ["counts"]
    sess.run(out, feed)
    # Calibrate: calls that take at least repeat_ms.
    start = time.perf_counter()
    calls = 0
    while time.perf_counter() - start < repeat_ms / 2000.0:
        sess.run(out, feed)
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    calls = max(1, int(repeat_ms / 1000.0 / per_call + 0.999))
    us = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            sess.run(out, feed)
        us.append((time.perf_counter() - start) * 1e6 / (calls * x.shape[0]))
    return {
        "batch": int(x.shape[0]),
        "calls_per_repeat": calls,
        "us_per_sample_median": statistics.median(us),
        "us_per_sample_min": min(us),
        "us_per_sample_max": max(us),
    }


def call_overhead_us(repeats, repeat_ms):
    """µs per `InferenceSession.run` of a one-Identity graph at batch 1: the
    Python and session overhead inside every timed call."""
    g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "overhead",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    sess = session(m)
    feed = {"x": np.zeros((1, 4), np.float32)}
    sess.run(["y"], feed)
    us = []
    for _ in range(repeats):
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < repeat_ms / 1000.0:
            sess.run(["y"], feed)
            n += 1
        us.append((time.perf_counter() - start) * 1e6 / n)
    return statistics.median(us)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="bench-DxHxO.safetensors from cx-bench kernel --export")
    ap.add_argument("--ref", required=True, help="bench-DxHxO.ref.json from cx-bench kernel --export")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--repeat-ms", type=int, default=150)
    ap.add_argument("--save-onnx", help="write the timed graph here")
    args = ap.parse_args()

    layers, steps = load_model(args.model)
    with open(args.ref) as f:
        ref = json.load(f)
    if ref["steps"] != steps:
        sys.exit(f"steps: model {steps}, reference {ref['steps']}")
    result = {
        "runtime": "onnxruntime",
        "onnxruntime_version": ort.__version__,
        "onnx_version": onnx.__version__,
        "python": platform.python_version(),
        "providers": ["CPUExecutionProvider"],
        "intra_op_num_threads": 1,
        "inter_op_num_threads": 1,
        "shape": ref["shape"],
        "steps": steps,
        "pid_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "check": check(layers, steps, ref),
    }
    model = build_graph(layers, steps, with_margin=False)
    result["graph_nodes"] = len(model.graph.node)
    if args.save_onnx:
        onnx.save(model, args.save_onnx)
    sess = session(model)
    inputs = np.asarray(ref["inputs"], np.float32)
    rows = []
    for b in (int(s) for s in args.batches.split(",")):
        if b > inputs.shape[0]:
            sys.exit(f"batch {b}: the reference has {inputs.shape[0]} rows")
        rows.append(time_batch(sess, np.ascontiguousarray(inputs[:b]), args.repeats, args.repeat_ms))
    result["rows"] = rows
    result["run_call_overhead_us"] = call_overhead_us(args.repeats, 50)
    print(json.dumps(result, indent=1))
    if not result["check"]["passed"]:
        sys.exit("check against the scalar reference failed")


if __name__ == "__main__":
    main()

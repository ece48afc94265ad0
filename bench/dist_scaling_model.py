#!/usr/bin/env python3
"""A scaling model of data-parallel training, on paper, from figures measured on one machine.

Each of N hosts runs its shard of the batch (the tokens one host handles per step stay as measured: weak
scaling), then the gradients (G bytes) are summed by a ring all-reduce, which sends and receives
2 (N - 1) / N x G bytes per host in 2 (N - 1) messages per bucket:

    t_comm = 2 (N - 1) / N x G / bandwidth + buckets x 2 (N - 1) x latency

Buckets start while backward runs, so communication hides behind backward except what exceeds it and the
last bucket, which can only start once backward is done:

    t_step = t_compute + max(t_last_bucket, t_comm - t_backward)

The bucket size that hides communication is the largest whose last bucket costs at most 5% of the step
(larger buckets waste the end of backward; much smaller ones pay 2 (N - 1) latencies each).

    bench/dist_scaling_model.py --step-seconds 1.2 --backward-share 0.6 --grad-mb 275 --tokens 2048
"""
import argparse
import math


def step_time(n, args, bandwidth, bucket_mb):
    grad = args.grad_mb * 1e6
    buckets = max(1, math.ceil(args.grad_mb / bucket_mb))
    ring = 2 * (n - 1) / n
    latency = 2 * (n - 1) * args.latency_us * 1e-6
    t_comm = ring * grad / bandwidth + buckets * latency
    t_last = ring * min(grad, bucket_mb * 1e6) / bandwidth + latency
    t_backward = args.backward_share * args.step_seconds
    return args.step_seconds + max(t_last, t_comm - t_backward), t_comm


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--step-seconds", type=float, required=True, help="one host's compute per step (measured)")
    p.add_argument("--backward-share", type=float, default=0.6, help="share of the step that is backward")
    p.add_argument("--grad-mb", type=float, required=True, help="gradient bytes per step, in MB")
    p.add_argument("--tokens", type=float, required=True, help="tokens one host handles per step")
    p.add_argument("--latency-us", type=float, default=30.0, help="one message's latency (TCP on Ethernet)")
    p.add_argument("--bucket-mb", type=float, default=25.0)
    args = p.parse_args()
    print("| hosts | link | all-reduce per step (s) | step (s) | tokens/s | of linear | bucket that hides it |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for n in (8, 64):
        for gbit in (10, 100):
            bandwidth = gbit * 1e9 / 8 * 0.9  # 90% of the line rate
            t, t_comm = step_time(n, args, bandwidth, args.bucket_mb)
            tps = n * args.tokens / t
            linear = n * args.tokens / args.step_seconds
            best = None
            for mb in (1, 2, 4, 8, 16, 25, 50, 100):
                tb, _ = step_time(n, args, bandwidth, mb)
                if best is None or tb < best[1] - 1e-9:
                    best = (mb, tb)
            print(f"| {n} | {gbit} Gbit/s | {t_comm:.3f} | {t:.3f} | {tps:,.0f} | {tps / linear:.0%} | "
                  f"{best[0]} MB ({n * args.tokens / best[1]:,.0f} tokens/s) |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Time of one training iteration of the DIGAN authors' own PyTorch code,
for `train_speed.py` to print beside ours. Runs in a separate environment
(PyTorch, einops, omegaconf) on a checkout of github.com/sihyun-yu/digan;
imports neither TensorFlow nor digan_tf. Prints one JSON object.

  python benchmarks/authors_train_speed.py --authors_repo=PATH \
      --resolution=64 --fmaps=0.5 [--batch=4] [--repeats=3]

Their environment (what their code imports; it uses `np.float`, which
NumPy 1.24 removed):

  python3.11 -m venv ENV && ENV/bin/pip install torch==2.13.0 einops \
      omegaconf requests 'numpy<1.24'

The iteration is the authors' training loop's (`training_loop.py`): phases
Gmain, Dmain and Dreg (R1, every 16th iteration, gain 16), each with
zero_grad, their loss's `accumulate_gradients`, the non-finite gradient
replacement and an Adam step; the same G + D + R1 / 16 that ours times.
Their networks as `train.py` builds them from `configs/digan.yml`, in
float32 (their discriminator's float16 layers are a GPU feature), with the
discriminator's conv_clamp 256. FLOPs are counted by PyTorch's
`FlopCounterMode` (matmuls and convolutions, multiply-add = 2).
"""

import argparse
import json
import os
import statistics
import sys
import time


def build(repo, resolution, fmaps, batch):
    sys.path[:0] = [os.path.join(repo, "src"), repo]
    import torch
    from omegaconf import OmegaConf
    from training import networks
    from training.loss import OurStyleGAN2Loss

    generator_cfg = OmegaConf.to_container(
        OmegaConf.load(os.path.join(repo, "configs", "digan.yml")).generator)
    channels = dict(channel_base=int(fmaps * 32768), channel_max=512)
    common = dict(c_dim=0, img_resolution=resolution, img_channels=3,
                  ours=True)
    G = networks.Generator(
        z_dim=512, w_dim=512, mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channels, num_fp16_res=0, conv_clamp=None),
        cfg=generator_cfg, **common).train().requires_grad_(False)
    D = networks.OurDiscriminator(
        num_fp16_res=0, conv_clamp=256,
        epilogue_kwargs=dict(mbstd_group_size=min(batch, 4)), **channels,
        **common).train().requires_grad_(False)
    loss = OurStyleGAN2Loss(torch.device("cpu"), G.mapping, G.synthesis, D,
                            diffaugment="color,translation", r1_gamma=1.0,
                            pl_weight=0, style_mixing_prob=0.0)
    optimizers = {}
    for name, module, interval, lr in (("G", G, 4, 0.0025),
                                       ("D", D, 16, 0.0025)):
        ratio = interval / (interval + 1)
        optimizers[name] = torch.optim.Adam(
            module.parameters(), lr=lr * ratio, betas=(0.0, 0.99 ** ratio),
            eps=1e-8)
    frames = torch.rand(batch, 6, resolution, resolution) * 2 - 1
    dt = torch.rand(batch, 1, 1, 1).expand(batch, 1, resolution, resolution)
    real = torch.cat([frames, dt], dim=1)
    return G, D, loss, optimizers, real


def phase_runner(G, D, loss, optimizers, real, batch):
    """The body of the authors' training loop for one phase."""
    import torch
    from torch_utils import misc

    modules = {"G": G, "D": D}
    labels = torch.zeros(batch, 0)

    def run(phase):
        name = phase[0]
        module, optimizer = modules[name], optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        loss.accumulate_gradients(
            phase=phase, real_img=real, real_c=labels,
            gen_z=torch.randn(batch, G.z_dim), gen_c=labels, sync=True,
            gain=16 if phase == "Dreg" else 1)
        module.requires_grad_(False)
        for param in module.parameters():
            if param.grad is not None:
                misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5,
                                out=param.grad)
        optimizer.step()
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors_repo", required=True)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--fmaps", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    run = phase_runner(*build(args.authors_repo, args.resolution, args.fmaps,
                              args.batch), args.batch)
    seconds, gflop = {}, {}
    for phase, key in (("Dmain", "D"), ("Dreg", "R1"), ("Gmain", "G")):
        counter = FlopCounterMode(display=False)
        with counter:
            run(phase)  # also the warm-up
        gflop[key] = counter.get_total_flops() / 1e9
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run(phase)
            times.append(time.perf_counter() - start)
        seconds[key] = statistics.median(times)
    print(json.dumps(dict(
        torch_version=torch.__version__, threads=torch.get_num_threads(),
        phase_seconds=seconds, phase_gflop=gflop,
        seconds_per_iteration=seconds["D"] + seconds["G"] + seconds["R1"] / 16,
        gflop_per_iteration=gflop["D"] + gflop["G"] + gflop["R1"] / 16)))


if __name__ == "__main__":
    main()

"""The per-frame work of `xhand eval`, written as a user would in plain PyTorch eager (f32):
XHand's three ConditionNetworks on [pose/pi, latent] per vertex, their heads, MANO's
Rodrigues + kinematic chain, linear blend skinning, vertex normals and the SH colour, then
the same tensors saved as safetensors. Used by scripts/bench-vs-torch.sh.

usage: python bench_vs_torch.py AVATAR.safetensors POSE.json OUT.safetensors
"""
import json
import math
import sys

import torch
from safetensors.torch import load_file, save_file

torch.set_grad_enabled(False)


def net(t, prefix):
    """XHand's ConditionNetwork forward (models/mlp.py L340-373)."""
    layers = []
    i = 0
    while f"{prefix}.lin{i}.bias" in t:
        if f"{prefix}.lin{i}.weight_v" in t:
            v, g = t[f"{prefix}.lin{i}.weight_v"], t[f"{prefix}.lin{i}.weight_g"]
            w = g * v / v.norm(dim=1, keepdim=True)
        else:
            w = t[f"{prefix}.lin{i}.weight"]
        layers.append((w, t[f"{prefix}.lin{i}.bias"]))
        i += 1
    return layers, t[f"{prefix}.latent_code"], t[f"{prefix}.x_mean"], t[f"{prefix}.static_code"]


def forward(parts, cond):
    layers, latent, x_mean, static = parts
    softplus = torch.nn.Softplus(beta=100)
    x = torch.cat([cond.expand(latent.shape[0], -1), latent], dim=1)
    for k, (w, b) in enumerate(layers):
        x = torch.nn.functional.linear(x, w, b)
        if k < len(layers) - 1:
            x = softplus(x)
    return x_mean + x @ torch.softmax(static, dim=0), x


def rodrigues(r):
    angle = torch.norm(r + 1e-8, dim=1, keepdim=True)
    axis = r / angle
    c, s = torch.cos(angle)[:, :, None], torch.sin(angle)[:, :, None]
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).view(-1, 3, 3)
    eye = torch.eye(3)[None]
    return eye + s * k + (1 - c) * (k @ k)


def main():
    avatar, pose_file, out = sys.argv[1:4]
    t = load_file(avatar)
    pose = torch.tensor(json.load(open(pose_file))["frames"][0]["pose"], dtype=torch.float32)
    cond = (pose / math.pi)[None]
    delta, code_delta = forward(net(t, "delta_net"), cond)
    color, code_albedo = forward(net(t, "color_net"), cond)
    lbs, _ = forward(net(t, "lbs_net"), cond)
    albedo, weights = torch.sigmoid(color), torch.softmax(lbs, dim=-1)
    # Kinematics and skinning (repose.py lbs_pose).
    rot = rodrigues((pose + t["pose_mean"]).view(16, 3))
    joints, parents = t["joints"], t["parents"].tolist()
    g = []
    for j in range(16):
        local = torch.eye(4)
        local[:3, :3] = rot[j]
        local[:3, 3] = joints[j] - (joints[parents[j]] if parents[j] >= 0 else 0)
        g.append(local if parents[j] < 0 else g[parents[j]] @ local)
    a = torch.stack(g)
    a[:, :3, 3] -= (a[:, :3, :3] @ joints[:, :, None])[:, :, 0]
    v = t["verts"] + delta
    tv = torch.einsum("vj,jab->vab", weights, a)
    verts = (tv[:, :3, :3] @ v[:, :, None])[:, :, 0] + tv[:, :3, 3]
    faces = t["faces"].long()
    f = verts[faces]
    fn = torch.cross(f[:, 1] - f[:, 0], f[:, 2] - f[:, 0], dim=1)
    normals = torch.zeros_like(verts).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, 0))
    normals = torch.nn.functional.normalize(normals, eps=1e-6)
    # SH colour (models/utils.py compute_color), row 0.
    x, y, z = normals[:, 0], normals[:, 1], normals[:, 2]
    basis = torch.stack([
        torch.full_like(x, 0.886226925), -1.772453851 * y, 1.772453851 * z, -1.772453851 * x,
        2.427032391 * x * y, -2.427032391 * y * z, 0.700623902 * (3 * z * z - 1),
        -2.427032391 * x * z, 1.213516195 * (x * x - y * y)], dim=1)
    gamma = t["sh_coeffs"][0].view(3, 9).clone()
    gamma[:, 0] += 0.8
    sh_color = (basis @ gamma.T) * albedo
    save_file({"delta": delta, "code_delta": code_delta.contiguous(), "albedo": albedo,
               "code_albedo": code_albedo.contiguous(), "lbs_weights": weights,
               "vertices": verts.contiguous(), "normals": normals, "sh_color": sh_color}, out)


if __name__ == "__main__":
    main()

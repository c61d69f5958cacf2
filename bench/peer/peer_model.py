"""The default mmfuse model package, run in PyTorch the way a research prototype
would run it: eager modules, one request per forward.

Reads the package's own files: config.pbtxt (protobuf text format) and
weights.pt, which LibTorch's torch::serialize::OutputArchive writes as a
TorchScript archive whose attributes are the C++ module's parameters under
their registered names ("expert_full.fusion.layers.0.qkv.weight");
torch.jit.load opens it and the tensors are read by name.

The forward is model/*.cc's, op for op, for what the default package uses:
one branch ("full", every modality), FUSION_MODE_CONCAT, pre-norm layers
(model/transformer_layer.cc), masked attention (model/attention.cc),
tokenizers (model/fusion_transformer.cc) and the concat head
(model/fusion_modes.cc). Any other package (another fusion mode, several
branches and a gate) is refused with an error naming what differs.
"""
import math
import os

import torch
import torch.nn.functional as F
from google.protobuf import text_format

from peer_protos import model_config_pb2

# model/attention.cc kMaskedScore: finite, so a row with every key masked
# stays finite; exp(-1e9 - max) underflows to exactly 0.
MASKED_SCORE = -1e9
LAYER_NORM_EPS = 1e-5  # torch::nn::LayerNormOptions' default, as in C++.
BRANCH = "full"


class PackageError(Exception):
    """A package the peer cannot load; the message names the part."""


def read_config(path):
    config = model_config_pb2.ModelConfig()
    try:
        with open(path, encoding="utf-8") as f:
            text_format.Parse(f.read(), config)
    except OSError as e:
        raise PackageError("cannot read %s: %s" % (path, e.strerror)) from e
    except text_format.ParseError as e:
        raise PackageError("%s: %s" % (path, e)) from e
    return config


def read_labels(path, num_classes):
    try:
        with open(path, encoding="utf-8") as f:
            labels = [line.rstrip("\r\n") for line in f if line.rstrip("\r\n")]
    except OSError as e:
        raise PackageError("cannot read %s: %s" % (path, e.strerror)) from e
    if len(labels) != num_classes:
        raise PackageError("%s has %d labels, config.pbtxt has num_classes=%d"
                           % (path, len(labels), num_classes))
    return labels


def check_supported(config):
    concat = model_config_pb2.FUSION_MODE_CONCAT
    if config.fusion_mode not in (concat, model_config_pb2.FUSION_MODE_UNSPECIFIED):
        raise PackageError("config.pbtxt fusion_mode=%s: the peer implements only %s"
                           % (model_config_pb2.FusionMode.Name(config.fusion_mode),
                              model_config_pb2.FusionMode.Name(concat)))
    if len(config.branches) > 1:
        raise PackageError("config.pbtxt has %d branches (a gated package): the peer "
                           "implements one branch" % len(config.branches))
    for branch in config.branches:
        if branch.modalities and len(branch.modalities) != len(config.modalities):
            raise PackageError("config.pbtxt branch %s does not use every modality"
                               % branch.name)
        if branch.fusion_mode not in (concat, model_config_pb2.FUSION_MODE_UNSPECIFIED):
            raise PackageError("config.pbtxt branch %s fusion_mode=%s: the peer implements "
                               "only concat" % (branch.name,
                                                model_config_pb2.FusionMode.Name(branch.fusion_mode)))
        if branch.unimodal_layers or branch.fusion_layers:
            raise PackageError("config.pbtxt branch %s overrides the layer counts: the peer "
                               "does not" % branch.name)


def read_weights(path, device="cpu"):
    """Every tensor of a torch::save'd C++ module, by registered name, on
    `device`."""
    try:
        module = torch.jit.load(path, map_location="cpu")
    except (RuntimeError, ValueError) as e:
        raise PackageError("%s is not a LibTorch archive: %s" % (path, str(e).splitlines()[0])) from e
    tensors = {name: t.detach().to(device) for name, t in module.named_parameters()}
    tensors.update({name: t.detach().to(device) for name, t in module.named_buffers()})
    return tensors


class Weights:
    """Tensors under a name prefix, with their shapes checked on access."""

    def __init__(self, tensors, path):
        self._tensors = tensors
        self._path = path

    def get(self, name, shape):
        t = self._tensors.get(name)
        if t is None:
            raise PackageError("%s has no tensor %s" % (self._path, name))
        if tuple(t.shape) != tuple(shape):
            raise PackageError("%s: %s has shape %s, config.pbtxt implies %s"
                               % (self._path, name, list(t.shape), list(shape)))
        return t.contiguous()

    def linear(self, prefix, in_features, out_features):
        return (self.get(prefix + ".weight", (out_features, in_features)),
                self.get(prefix + ".bias", (out_features,)))

    def layer_norm(self, prefix, d):
        return (self.get(prefix + ".weight", (d,)), self.get(prefix + ".bias", (d,)))


class Layer:
    """model/transformer_layer.cc: pre-norm self-attention, then GELU MLP."""

    def __init__(self, w, prefix, d, heads, ff):
        # Widths are Python ints, never read off a tensor's shape, so a
        # traced export (bench/onnx/export_peer.py) keeps them constant.
        self.d = d
        self.heads = heads
        self.attention_norm = w.layer_norm(prefix + ".attention_norm", d)
        self.qkv = w.linear(prefix + ".qkv", d, 3 * d)
        self.attention_out = w.linear(prefix + ".attention_out", d, d)
        self.ff_norm = w.layer_norm(prefix + ".ff_norm", d)
        self.ff_in = w.linear(prefix + ".ff_in", d, ff)
        self.ff_out = w.linear(prefix + ".ff_out", ff, d)

    def __call__(self, x, padding):
        d = self.d
        batch, tokens = x.shape[0], x.shape[1]
        head_dim = d // self.heads
        h = F.layer_norm(x, (d,), *self.attention_norm, eps=LAYER_NORM_EPS)
        split = F.linear(h, *self.qkv).view(batch, tokens, 3, self.heads, head_dim)
        split = split.permute(2, 0, 3, 1, 4)
        q = split[0] * (1.0 / math.sqrt(head_dim))
        k, v = split[1], split[2]
        scores = torch.matmul(q, k.transpose(-2, -1))
        scores = scores.masked_fill(padding.view(batch, 1, 1, tokens), MASKED_SCORE)
        has_keys = (~padding).any(-1).view(batch, 1, 1, 1)
        weights = torch.softmax(scores, -1) * has_keys
        context = torch.matmul(weights, v).transpose(1, 2).reshape(batch, tokens, d)
        h = x + F.linear(context, *self.attention_out)
        ff = F.gelu(F.linear(F.layer_norm(h, (d,), *self.ff_norm, eps=LAYER_NORM_EPS),
                             *self.ff_in))
        return h + F.linear(ff, *self.ff_out)


class Tokenizer:
    """model/fusion_transformer.cc Encode: CLS + projected frames + positions,
    then the modality's unimodal layers."""

    def __init__(self, w, prefix, modality, d, t):
        self.projection = w.linear(prefix + "_projection", modality.feature_dim, d)
        self.cls = w.get(prefix + "_cls", (d,))
        self.positions = w.get(prefix + "_positions", (1 + modality.max_frames, d))
        self.layers = [Layer(w, "%s_layers.%d" % (prefix, i), d, t.num_heads, t.ff_dim)
                       for i in range(t.unimodal_layers)]

    def __call__(self, features, lengths):
        batch, frames, _ = features.shape
        d = self.cls.shape[0]
        present = lengths > 0
        frame_padding = (torch.arange(frames, device=lengths.device).unsqueeze(0)
                         >= lengths.unsqueeze(1))
        padding = torch.cat([(~present).unsqueeze(1), frame_padding], 1)
        x = torch.cat([self.cls.view(1, 1, d).expand(batch, 1, d),
                       F.linear(features, *self.projection)], 1) + self.positions[:frames + 1]
        for layer in self.layers:
            x = layer(x, padding)
        return x, padding


class PeerModel:
    """The package's full branch; forward(features) -> probabilities. Its
    weights live on `device` ("cpu", "cuda", "cuda:N"); so must the inputs."""

    def __init__(self, model_dir, device="cpu"):
        if not os.path.isdir(model_dir):
            raise PackageError("model package %s is not a directory" % model_dir)
        self.config = read_config(os.path.join(model_dir, "config.pbtxt"))
        check_supported(self.config)
        self.labels = read_labels(os.path.join(model_dir, "labels.txt"), self.config.num_classes)
        weights_path = os.path.join(model_dir, "weights.pt")
        if not os.path.exists(weights_path):
            raise PackageError("model package %s has no weights.pt" % model_dir)
        self.device = torch.device(device)
        tensors = read_weights(weights_path, self.device)
        w = Weights(tensors, weights_path)
        t = self.config.transformer
        d = t.d_model
        prefix = "expert_" + (self.config.branches[0].name if self.config.branches else BRANCH)
        self.branch = prefix[len("expert_"):]
        self.tokenizers = [Tokenizer(w, "%s.%s" % (prefix, m.name), m, d, t)
                           for m in self.config.modalities]
        self.fusion_cls = w.get(prefix + ".fusion.cls", (d,))
        self.fusion_layers = [Layer(w, "%s.fusion.layers.%d" % (prefix, i), d, t.num_heads, t.ff_dim)
                              for i in range(t.fusion_layers)]
        self.norm = w.layer_norm(prefix + ".fusion.norm", d)
        self.head = w.linear(prefix + ".fusion.head", d, self.config.num_classes)
        self.num_parameters = sum(v.numel() for k, v in tensors.items() if k.startswith(prefix))

    def forward(self, inputs):
        """inputs: one (features [B, T, dim] float32, lengths [B] int64) per config
        modality, or None where the modality is absent from the whole batch.
        Returns probabilities [B, num_classes]."""
        tokens, padding = [], []
        for tokenizer, modality_input in zip(self.tokenizers, inputs):
            if modality_input is None:
                continue  # Absent: its encoder never runs.
            x, pad = tokenizer(*modality_input)
            tokens.append(x)
            padding.append(pad)
        if not tokens:
            raise ValueError("a request needs at least one present modality")
        batch = tokens[0].shape[0]
        d = self.fusion_cls.shape[0]
        x = torch.cat([self.fusion_cls.view(1, 1, d).expand(batch, 1, d)] + tokens, 1)
        pad = torch.cat([torch.zeros(batch, 1, dtype=torch.bool, device=x.device)] + padding, 1)
        for layer in self.fusion_layers:
            x = layer(x, pad)
        cls = F.layer_norm(x[:, 0], (d,), *self.norm, eps=LAYER_NORM_EPS)
        return torch.softmax(F.linear(cls, *self.head), -1)

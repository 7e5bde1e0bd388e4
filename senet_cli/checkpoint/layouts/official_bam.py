"""BAM's official ResNets (Jongchan/attention-module, MODELS/model_resnet.py with `att_type='BAM'`).

Key table: the backbone is torchvision's (`conv1`, `bn1`, `layer1.0.conv1`, ..., `fc`; the stride on
the 3x3 conv, our v1.5; a 3x3 stem without max-pool for CIFAR), and the three modules sit on the
model as `bam1`, `bam2`, `bam3`, run after `layer1`..`layer3`. Inside each the names are ours
(`channel_att.gate_c.gate_c_fc_0`, `spatial_att.gate_s.gate_s_conv_di_0`, ...), and the function
is ours too: (1 + sigmoid(M_c * M_s)) * F. Ours sits in the last block of the stage it follows:
`bam1.*` -> `layer1.{last}.bam.*`.
"""

from __future__ import annotations

from senet_cli.checkpoint.layouts import Layout, Mapped, Shapes, StateDict, register_layout
from senet_cli.checkpoint.layouts.official_common import any_key, blocks_per_stage, classes, rename, resnet_backbone

NAME = "official-bam"
MARKER = r"bam[123]\.channel_att\.gate_c\.gate_c_fc_0\.weight"


def claims(shapes: Shapes) -> bool:
    return "layer1.0.conv1.weight" in shapes and "fc.weight" in shapes and any_key(shapes, MARKER)


def to_senet(state: StateDict) -> Mapped:
    from senet_cli.checkpoint.layouts.official_common import shapes_of
    from senet_cli.zoo import make_config

    shapes = shapes_of(state)
    backbone = resnet_backbone(shapes, NAME)
    last = blocks_per_stage(shapes)
    stages = tuple(stage for stage in (1, 2, 3, 4) if f"bam{stage}.channel_att.gate_c.gate_c_fc_0.weight" in shapes)
    reduced, channels = shapes[f"bam{stages[0]}.channel_att.gate_c.gate_c_fc_0.weight"]
    dilation_kernel = shapes[f"bam{stages[0]}.spatial_att.gate_s.gate_s_conv_di_0.weight"]
    rules = [(rf"bam{stage}\.(.*)", rf"layer{stage}.{last[stage - 1] - 1}.bam.\1") for stage in stages]
    config = make_config(f"bam_{backbone}", ratio=channels // reduced, stages=stages,
                         num_classes=classes(shapes, "fc.weight"))
    notes = (f"bam1..bam{len(stages)} on the model -> bam in the last block of layer1..layer{len(stages)}",
             f"dilation of the spatial 3x3 convs assumed 4 (the official value; the {list(dilation_kernel)} "
             "weights do not hold it)")
    return Mapped(config=config, state_dict=rename(state, rules), notes=notes)


LAYOUT = register_layout(Layout(
    name=NAME, repository="Jongchan/attention-module",
    covers="BAM ResNet-18/34/50/101, ImageNet and CIFAR (`ResidualNet(..., 'BAM')`)",
    claims=claims, to_senet=to_senet,
))

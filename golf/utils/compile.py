"""How golf compiles a model for training, TTT and benchmarks: one whole graph (fullgraph, so a graph
break is an error instead of a silent slowdown) with static shapes."""

import torch

BACKEND = "inductor"  # tests swap in "eager" / "aot_eager": the same tracing, no C++ build


def compile_model(model: torch.nn.Module):
    # Graphs that an earlier model left in this process (the jobs of a sequential Hydra sweep, training before
    # TTT) count against dynamo's recompile limit, and fullgraph turns hitting it into a hard failure: the
    # ninth differently shaped model of a sweep would stop at its first step.
    torch._dynamo.reset()
    return torch.compile(model, dynamic=False, fullgraph=True, backend=BACKEND)

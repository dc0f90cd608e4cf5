"""TinyTransformer: a Transformer encoder classifier over token sequences.

Token and learned position embeddings (width 256), four pre-norm encoder layers (4 heads,
feed-forward 1024), mean pooling over the sequence and a linear head: about 3.5 M parameters.
Inputs are int64 token ids in [0, VOCAB_SIZE), SEQUENCE_LENGTH tokens per sample.
"""

from __future__ import annotations

import torch
from torch import nn

VOCAB_SIZE = 1000
SEQUENCE_LENGTH = 128
WIDTH = 256
LAYERS = 4
HEADS = 4
FEED_FORWARD = 1024
NUM_CLASSES = 10


class TinyTransformer(nn.Module):
    """Input [B, 128] int64 tokens, output [B, 10] logits."""

    def __init__(self) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(VOCAB_SIZE, WIDTH)
        self.position_embedding = nn.Parameter(torch.zeros(1, SEQUENCE_LENGTH, WIDTH))
        nn.init.normal_(self.position_embedding, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=WIDTH,
            nhead=HEADS,
            dim_feedforward=FEED_FORWARD,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # enable_nested_tensor only matters with padding masks, which this model never gets.
        self.encoder = nn.TransformerEncoder(layer, num_layers=LAYERS, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, NUM_CLASSES)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.position_embedding[:, : tokens.shape[1]]
        x = self.encoder(x)
        return self.head(self.norm(x).mean(dim=1))

import torch

from prn_core.models.decoder import ANOMALY_PRIOR, Decoder


def test_decoder_shape_and_prior_initialisation():
    torch.manual_seed(0)
    dec = Decoder(32, (8, 16, 24), (32, 16, 8, 8), 8).eval()
    bottom = torch.randn(2, 32, 4, 4)
    skips = [torch.randn(2, 8, 32, 32), torch.randn(2, 16, 16, 16), torch.randn(2, 24, 8, 8)]
    logits = dec(bottom, skips, (128, 128))
    assert logits.shape == (2, 1, 128, 128)
    # The map starts near the anomaly prior instead of 0.5.
    assert abs(torch.sigmoid(logits).mean().item() - ANOMALY_PRIOR) < 0.02

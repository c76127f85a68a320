import pytest
import torch

from photossl.errors import PhotosslError
from photossl.models import ENCODERS, CifarResNet, DigitsCNN, ESSLEncoder, SmallEncoder, build_encoder


@pytest.mark.parametrize(
    "name,cls,in_channels,dim",
    [("essl", ESSLEncoder, 1, 1024), ("small", SmallEncoder, 1, 256), ("resnet18", CifarResNet, 3, 512),
     ("digits", DigitsCNN, 1, 128)],
)
def test_every_name_builds_an_encoder_with_feature_dim(name, cls, in_channels, dim):
    model = build_encoder(name)
    assert isinstance(model, cls) and model.feature_dim == dim
    assert model(torch.randn(2, in_channels, 32, 32)).shape == (2, dim)


def test_registry_names():
    assert sorted(ENCODERS) == ["digits", "essl", "p4m", "resnet18", "small"]


def test_kwargs_are_passed_through():
    model = build_encoder("small", feature_dim=32, channels=(8, 16), circular_padding=False)
    assert model.feature_dim == 32 and not model.circular_padding
    assert build_encoder("resnet18", in_channels=1)(torch.randn(2, 1, 16, 16)).shape == (2, 512)
    essl = build_encoder("essl", channels=(4, 8, 8), hidden_dim=8, feature_dim=3, circular_padding=False)
    assert not essl.circular_padding and essl.feature_dim == 3


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown encoder 'vit'.*digits, essl, p4m, resnet18, small") as info:
        build_encoder("vit")
    assert isinstance(info.value, PhotosslError)


def test_unknown_keyword_is_a_one_line_error_naming_the_accepted_ones():
    with pytest.raises(PhotosslError, match="'small'.*feature_dim") as info:
        build_encoder("small", width=3)
    assert "\n" not in str(info.value)


def test_bad_values_still_name_the_parameter():
    with pytest.raises(PhotosslError, match="feature_dim"):
        build_encoder("digits", feature_dim=-2)

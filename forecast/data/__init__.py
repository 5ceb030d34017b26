"""From field stores to model tensors and back."""

from forecast.data.channels import ChannelLayout

__all__ = ["ChannelLayout"]

"""From field stores to model tensors and back."""

from forecast.data.layout import ChannelLayout

__all__ = ["ChannelLayout"]

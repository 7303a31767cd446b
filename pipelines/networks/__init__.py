"""Extra networks named in the prompt: LoRA tags and applying LoRAs to a pipeline for one job."""

from pipelines.networks.formats import check_loadable, network_kind
from pipelines.networks.lora import AppliedLora, AppliedLoras, applied_loras, resolve_loras
from pipelines.networks.tags import LoraTag, PromptLoras, extract_loras, merge_tags, parse_lora_tags

__all__ = [
    "AppliedLora",
    "AppliedLoras",
    "LoraTag",
    "PromptLoras",
    "applied_loras",
    "check_loadable",
    "extract_loras",
    "merge_tags",
    "network_kind",
    "parse_lora_tags",
    "resolve_loras",
]

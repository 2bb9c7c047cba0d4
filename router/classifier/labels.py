"""The twelve trained task labels (meanings in router/classifier/data/README.md). No dependencies."""

TASKS = (
    "summarization",
    "extraction",
    "classification",
    "closed_qa",
    "translation",
    "rewriting",
    "open_qa",
    "brainstorming",
    "creative_writing",
    "coding",
    "math",
    "reasoning",
)

"""Names shared by the engine and the Django app, importable without torch, pandas or sklearn.

Web processes validate suites and requests against these; only workers import the plug-ins.
"""

QUALITY_METRICS = ("accuracy", "macro_f1", "precision", "recall", "roc_auc")
FAIRNESS_METRICS = (
    "accuracy_gap",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)
KNOWN_METRICS = QUALITY_METRICS + FAIRNESS_METRICS

SEQUENCE_CLASSIFICATION = "transformers-sequence-classification"
PEFT_ADAPTER = "peft-adapter"
EMBEDDING_HEAD = "embedding-head"
TABULAR_LINEAR = "tabular-linear"
# The plug-ins registered in `evaluators.engine.plugins` (a test keeps the two in step).
EVALUATOR_KINDS = (SEQUENCE_CLASSIFICATION, PEFT_ADAPTER, EMBEDDING_HEAD, TABULAR_LINEAR)
# Kinds that only hold the weights they add, and run on top of a base model's files.
KINDS_NEEDING_BASE = (PEFT_ADAPTER, EMBEDDING_HEAD)

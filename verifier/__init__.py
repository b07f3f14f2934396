"""The stage-1 gate: is an extracted attribute supported by the user's own quoted words?

Run time (no torch): `format_snippet` builds the evidence string, `Verifier` scores
(snippet, attribute) pairs with the committed int8 ONNX model under models/verifier/.
Training side (torch): `verifier.dataset`, `verifier.train`, `verifier.export`.
"""

from verifier.runtime import Verifier, VerifierModelMissing
from verifier.snippet import format_snippet

__all__ = ["Verifier", "VerifierModelMissing", "format_snippet"]

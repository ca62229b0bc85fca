"""The on-call loop: taking a case, escalating one nobody took, silences and inhibition."""

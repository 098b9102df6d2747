"""Units shown beside TPP (no imports: the CLI's output helpers load it at start-up)."""

#: TPP of one NVIDIA H100 SXM: the unit of "H100-equivalents" shown beside TPP.
#: Derived (989.5 dense FP16 TFLOPS x 16), see rules-facts.md "Chips".
H100_TPP = 15_832

// Header-only target: see include/CAtomicWords.h.

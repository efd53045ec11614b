// Atomic access to plain 64-bit words in raw memory: the stats ring and the worker counter
// slots live in memory that Swift's `Atomic` cannot describe (mmap'd, laid out by index).
// Every function is `static inline`; each maps to one C11 atomic builtin.
#ifndef CATOMICWORDS_H
#define CATOMICWORDS_H

#include <stdint.h>

static inline uint64_t AtomicWord_loadRelaxed(const uint64_t *word) {
    return __atomic_load_n(word, __ATOMIC_RELAXED);
}

static inline uint64_t AtomicWord_loadAcquire(const uint64_t *word) {
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

static inline void AtomicWord_storeRelaxed(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELAXED);
}

static inline void AtomicWord_storeRelease(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
}

/// Single-writer increment: a relaxed load and a relaxed store, no locked read-modify-write.
/// Only correct when one thread writes the word.
static inline void AtomicWord_addSingleWriter(uint64_t *word, uint64_t amount) {
    __atomic_store_n(word, __atomic_load_n(word, __ATOMIC_RELAXED) + amount, __ATOMIC_RELAXED);
}

static inline void AtomicWord_fenceAcquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }

static inline void AtomicWord_fenceRelease(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }

#endif

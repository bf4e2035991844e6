// A 64-bit key per similarity whose ascending order is: decreasing value, then increasing column. The high 32 bits
// order floats by decreasing value (-0.0 is first turned into +0.0 so the two tie, as torch compares them); the low
// 32 bits hold the column. The smallest k keys of a row are its top-k with ties broken by the lowest column.
__device__ __forceinline__ unsigned long long descending_key(float value, unsigned long long column) {
    unsigned int u = __float_as_uint(value + 0.0f);            // -0.0 -> +0.0
    unsigned int ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((unsigned long long)(~ascending) << 32) | column;
}

// Row-wise top-k (k <= KMAX) of a C-contiguous [Q, num_columns] float32 matrix, one block of THREADS threads (a power
// of two) per row; THREADS and KMAX are defined at compile time. Each thread keeps its k smallest keys (insertion
// sort); the block then merges the threads' lists k times by a min-reduction.
// Outputs are [Q, k]: values by decreasing value, ties by the lowest column.
#ifndef THREADS
#error "THREADS (the block size) must be defined"
#endif
#ifndef KMAX
#error "KMAX (the largest k) must be defined"
#endif
#define NO_KEY 0xffffffffffffffffULL

extern "C" __global__ void topk_rows(const float* sims, const long long num_columns, const int k,
                                     float* out_values, long long* out_indices) {
    const int tid = threadIdx.x;
    const float* row = sims + (long long)blockIdx.x * num_columns;
    unsigned long long best[KMAX];
    int count = 0;
    for (long long c = tid; c < num_columns; c += THREADS) {
        const unsigned long long key = descending_key(row[c], (unsigned long long)c);
        if (count == k && key >= best[k - 1]) continue;
        int slot = count < k ? count++ : k - 1;
        while (slot > 0 && best[slot - 1] > key) { best[slot] = best[slot - 1]; --slot; }
        best[slot] = key;
    }
    __shared__ unsigned long long reduce[THREADS];
    int head = 0;
    for (int r = 0; r < k; ++r) {
        const unsigned long long mine = head < count ? best[head] : NO_KEY;
        reduce[tid] = mine;
        __syncthreads();
        for (int half = THREADS / 2; half > 0; half >>= 1) {
            if (tid < half && reduce[tid + half] < reduce[tid]) reduce[tid] = reduce[tid + half];
            __syncthreads();
        }
        const unsigned long long winner = reduce[0];
        if (mine == winner) ++head;                          // keys are unique inside a row
        if (tid == 0) {
            const long long column = (long long)(winner & 0xffffffffULL);
            out_indices[(long long)blockIdx.x * k + r] = column;
            out_values[(long long)blockIdx.x * k + r] = row[column];
        }
        __syncthreads();
    }
}

// The key of every element of a C-contiguous [Q, num_columns] float32 matrix (for k > KMAX, sorted row-wise).
extern "C" __global__ void row_keys(const float* sims, const long long num_columns, const long long size,
                                    unsigned long long* keys) {
    const long long e = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (e >= size) return;
    keys[e] = descending_key(sims[e], (unsigned long long)(e % num_columns));
}

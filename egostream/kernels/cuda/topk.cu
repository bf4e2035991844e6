// Row-wise top-k of a C-contiguous [Q, num_columns] float32 matrix: values by decreasing value, ties by the lowest
// column (the CPU path's rule). THREADS (the block size, a power of two) and KMAX (the largest k of the selection
// kernels) are defined at compile time.
//
// Every value gets a 64-bit key whose ascending order is the wanted order, so the top-k of a row are its k smallest
// keys. A block selects the k smallest keys of a column range: each thread keeps its own k smallest (insertion sort),
// then the block merges the threads' lists k times by a min-reduction. A row is split into parts of `chunk` columns,
// one block each (topk_partial), so that a few long rows still fill the GPU; topk_merge selects from the parts'
// candidates. A row of one part is done by topk_rows in one launch. For k > KMAX, row_keys writes every key and the
// rows are sorted.
#ifndef THREADS
#error "THREADS (the block size) must be defined"
#endif
#ifndef KMAX
#error "KMAX (the largest k) must be defined"
#endif
#define NO_KEY 0xffffffffffffffffULL

// The high 32 bits order floats by decreasing value (-0.0 is first turned into +0.0 so the two tie, as torch compares
// them); the low 32 bits hold the column.
__device__ __forceinline__ unsigned long long descending_key(float value, unsigned long long column) {
    unsigned int u = __float_as_uint(value + 0.0f);            // -0.0 -> +0.0
    unsigned int ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((unsigned long long)(~ascending) << 32) | column;
}

// The k smallest keys among positions [begin, end), ascending, into selected[0..k) (NO_KEY past the candidates).
// The key of position c is descending_key(row[c], c) when row is given, keys[c] otherwise. All threads must call it.
__device__ void block_select(const float* row, const unsigned long long* keys, long long begin, long long end, int k,
                             unsigned long long* selected, unsigned long long* reduce) {
    const int tid = threadIdx.x;
    unsigned long long best[KMAX];
    int count = 0;
    for (long long c = begin + tid; c < end; c += THREADS) {
        const unsigned long long key = row ? descending_key(row[c], (unsigned long long)c) : keys[c];
        if (count == k && key >= best[k - 1]) continue;
        int slot = count < k ? count++ : k - 1;
        while (slot > 0 && best[slot - 1] > key) { best[slot] = best[slot - 1]; --slot; }
        best[slot] = key;
    }
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
        if (mine == winner) ++head;                           // real keys are unique inside a row
        if (tid == 0) selected[r] = winner;
        __syncthreads();
    }
}

// values[r] and indices[r] of the selected keys of one row.
__device__ void write_selected(const unsigned long long* selected, const float* row, int k, float* values,
                               long long* indices) {
    for (int r = threadIdx.x; r < k; r += THREADS) {
        const long long column = (long long)(selected[r] & 0xffffffffULL);
        indices[r] = column;
        values[r] = row[column];
    }
}

// One block per row: the top-k of the whole row.
extern "C" __global__ void topk_rows(const float* sims, const long long num_columns, const int k, float* values,
                                     long long* indices) {
    __shared__ unsigned long long reduce[THREADS];
    __shared__ unsigned long long selected[KMAX];
    const long long row = blockIdx.x;
    const float* row_values = sims + row * num_columns;
    block_select(row_values, 0, 0, num_columns, k, selected, reduce);
    write_selected(selected, row_values, k, values + row * k, indices + row * k);
}

// One block per (row, part): the k smallest keys of columns [part * chunk, (part + 1) * chunk) into
// partial[row, part * k .. (part + 1) * k) (the keys' bits, in a signed buffer that torch allocates).
extern "C" __global__ void topk_partial(const float* sims, const long long num_columns, const int k,
                                        const long long chunk, const long long parts, long long* partial) {
    __shared__ unsigned long long reduce[THREADS];
    __shared__ unsigned long long selected[KMAX];
    const long long row = blockIdx.x / parts, part = blockIdx.x % parts;
    const long long begin = part * chunk;
    const long long end = begin + chunk < num_columns ? begin + chunk : num_columns;
    block_select(sims + row * num_columns, 0, begin, end, k, selected, reduce);
    for (int r = threadIdx.x; r < k; r += THREADS) partial[(row * parts + part) * k + r] = (long long)selected[r];
}

// One block per row: the top-k among the row's parts * k candidate keys of topk_partial.
extern "C" __global__ void topk_merge(const long long* partial, const long long parts, const float* sims,
                                      const long long num_columns, const int k, float* values, long long* indices) {
    __shared__ unsigned long long reduce[THREADS];
    __shared__ unsigned long long selected[KMAX];
    const long long row = blockIdx.x;
    block_select(0, (const unsigned long long*)(partial + row * parts * k), 0, parts * k, k, selected, reduce);
    write_selected(selected, sims + row * num_columns, k, values + row * k, indices + row * k);
}

// The key of every element of a C-contiguous [Q, num_columns] float32 matrix (for k > KMAX, sorted row-wise), with
// the top bit flipped so that signed 64-bit order is the keys' unsigned order (torch sorts int64 on every device).
extern "C" __global__ void row_keys(const float* sims, const long long num_columns, const long long size,
                                    long long* keys) {
    const long long e = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (e >= size) return;
    keys[e] = (long long)(descending_key(sims[e], (unsigned long long)(e % num_columns)) ^ 0x8000000000000000ULL);
}

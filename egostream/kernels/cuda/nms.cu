// Greedy 1-D soft-NMS / hard NMS, one thread block per group (class). Needs THREADS (the block size, a power of
// two) defined at compile time. A parallel transcription of egostream/kernels/nms.py::_greedy_groups_numpy: the same
// candidate array per group, the same pick rule (highest current score; ties by array position for soft-NMS, by input
// row for hard NMS), the same float32 operation order (compile with --fmad=false), the Gaussian weight as
// (float)exp((double)w), and the reference's "replace a dropped candidate by the last one" compaction
// (happyharrycn/actionformer_release@61ea7eb:libs/utils/csrc/nms_cpu.cpp, softnms_1d_cpu) computed with block-wide
// prefix sums instead of a sequential sweep.
//
// Layout: group g owns columns [g * width, g * width + counts[g]) of every [G, width] array; rows[g, c] is the input
// row of its c-th candidate. The picks of group g are written to pick_row / pick_score[g, 0:picks[g]].
#ifndef THREADS
#error "THREADS (the block size) must be defined"
#endif
#define LLMAX 9223372036854775807LL

// Exclusive prefix sum of one int per thread over the block; every thread gets the block total.
__device__ int block_exclusive_scan(int value, int* buf, int* total) {
    const int tid = threadIdx.x;
    buf[tid] = value;
    __syncthreads();
    for (int offset = 1; offset < THREADS; offset <<= 1) {
        const int add = tid >= offset ? buf[tid - offset] : 0;
        __syncthreads();
        buf[tid] += add;
        __syncthreads();
    }
    const int inclusive = buf[tid];
    *total = buf[THREADS - 1];
    __syncthreads();
    return inclusive - value;
}

__device__ void swap_candidates(float* x1, float* x2, float* area, float* score, long long* row,
                                long long a, long long b) {
    float f;
    f = x1[a]; x1[a] = x1[b]; x1[b] = f;
    f = x2[a]; x2[a] = x2[b]; x2[b] = f;
    f = area[a]; area[a] = area[b]; area[b] = f;
    f = score[a]; score[a] = score[b]; score[b] = f;
    long long r = row[a]; row[a] = row[b]; row[b] = r;
}

extern "C" __global__ void greedy_nms_groups(
        const float* segs, const float* scores, const long long* rows, const long long* counts,
        const int width, const int soft, const float sigma, const float min_score, const float iou_threshold,
        const long long max_picks,
        float* x1, float* x2, float* area, float* score, long long* row, int* dropped, int* hole_rank,
        int* mover_by_rank, long long* pick_row, float* pick_score, long long* picks) {
    const int tid = threadIdx.x;
    const long long base = (long long)blockIdx.x * width;
    __shared__ float best_score[THREADS];
    __shared__ long long best_key[THREADS];
    __shared__ int best_pos[THREADS];
    __shared__ int scan_buf[THREADS];
    __shared__ int kept;  // survivors of the current step

    int n = (int)counts[blockIdx.x];
    for (int c = tid; c < n; c += THREADS) {
        const long long r = rows[base + c];
        const float a = segs[2 * r], b = segs[2 * r + 1];
        x1[base + c] = a;
        x2[base + c] = b;
        area[base + c] = __fadd_rn(__fsub_rn(b, a), 1e-6f);
        score[base + c] = scores[r];
        row[base + c] = r;
    }
    __syncthreads();

    int step = 0;
    for (; step < n && (max_picks <= 0 || step < max_picks); ++step) {
        // 1. the candidate with the highest current score; ties: lowest position (soft) or input row (hard)
        float v_best = __int_as_float(0xff800000);  // -inf
        long long k_best = LLMAX;
        int p_best = -1;
        for (int c = step + tid; c < n; c += THREADS) {
            const float v = score[base + c];
            const long long k = soft ? (long long)c : row[base + c];
            if (v > v_best || (v == v_best && k < k_best)) { v_best = v; k_best = k; p_best = c; }
        }
        best_score[tid] = v_best; best_key[tid] = k_best; best_pos[tid] = p_best;
        __syncthreads();
        for (int half = THREADS / 2; half > 0; half >>= 1) {
            if (tid < half) {
                const float v = best_score[tid + half];
                const long long k = best_key[tid + half];
                if (v > best_score[tid] || (v == best_score[tid] && k < best_key[tid])) {
                    best_score[tid] = v; best_key[tid] = k; best_pos[tid] = best_pos[tid + half];
                }
            }
            __syncthreads();
        }
        // 2. swap it to the front of the remaining part and output it
        if (tid == 0) {
            swap_candidates(x1, x2, area, score, row, base + step, base + best_pos[0]);
            pick_row[base + step] = row[base + step];
            pick_score[base + step] = score[base + step];
            kept = 0;
        }
        __syncthreads();
        const float px1 = x1[base + step], px2 = x2[base + step], parea = area[base + step];
        const int first = step + 1;

        // 3. decay (soft) or suppress (hard) every later candidate; flag the dropped ones
        int kept_here = 0;
        for (int c = first + tid; c < n; c += THREADS) {
            const long long i = base + c;
            const float inter = fmaxf(0.0f, __fsub_rn(fminf(px2, x2[i]), fmaxf(px1, x1[i])));
            const float iou = __fdiv_rn(inter, __fsub_rn(__fadd_rn(parea, area[i]), inter));
            int drop;
            if (soft) {
                const float w = __fdiv_rn(-__fmul_rn(iou, iou), sigma);
                const float s = __fmul_rn(score[i], (float)exp((double)w));
                score[i] = s;
                drop = s < min_score;
            } else {
                drop = iou >= iou_threshold;
            }
            dropped[i] = drop;
            kept_here += !drop;
        }
        if (kept_here) atomicAdd(&kept, kept_here);
        __syncthreads();
        const int new_n = first + kept;  // kept is next written after the next step's barriers
        if (new_n == n) continue;

        // 4. holes below new_n are filled, in increasing position, by the survivors at or above new_n taken in
        //    decreasing position (the sequential swap-with-last sweep of the reference)
        int holes = 0;
        for (int chunk = first; chunk < new_n; chunk += THREADS) {
            const int c = chunk + tid;
            const int flag = c < new_n && dropped[base + c];
            int total = 0;
            const int rank = block_exclusive_scan(flag, scan_buf, &total) + holes;
            if (flag) hole_rank[base + c] = rank;
            holes += total;
        }
        int movers = 0;
        for (int chunk = new_n; chunk < n; chunk += THREADS) {
            const int c = chunk + tid;
            const int flag = c < n && !dropped[base + c];
            int total = 0;
            const int rank = block_exclusive_scan(flag, scan_buf, &total) + movers;
            if (flag) mover_by_rank[base + (holes - 1 - rank)] = c;
            movers += total;
        }
        __syncthreads();
        for (int c = first + tid; c < new_n; c += THREADS) {
            const long long i = base + c;
            if (dropped[i]) {
                const long long src = base + mover_by_rank[base + hole_rank[i]];
                x1[i] = x1[src]; x2[i] = x2[src]; area[i] = area[src]; score[i] = score[src]; row[i] = row[src];
            }
        }
        __syncthreads();
        n = new_n;
    }
    if (tid == 0) picks[blockIdx.x] = step;
}

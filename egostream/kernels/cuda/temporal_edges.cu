// Radius edges on 1-D positions sorted inside each segment [ptr[s], ptr[s+1]); needs POSITION_T (float or double)
// defined at compile time. One thread per target node i = first_target + thread: the sources of i form one contiguous
// run around it, so the thread walks left and right from i while (p_j - p_i)^2 < r^2 holds (the test of the CPU path
// and of torch_cluster, in the dtype of the positions). count_runs measures each run and the number of edges it gives;
// after an exclusive prefix sum of the counts, write_runs writes the sources in increasing order, so the edges come
// out sorted by target, then source, exactly like the CPU path.
//
// The incremental form (the edges that appending nodes num_old.. to a buffer adds) uses the same two kernels:
// a target below num_old keeps only the sources at or above num_old. num_old = 0 gives the whole graph.
#ifndef POSITION_T
#error "POSITION_T (float or double) must be defined"
#endif

__device__ long long edges_of_run(long long i, long long left, long long right, long long num_old, int loop) {
    if (i < num_old) {  // only the appended sources j >= num_old, all on the right of i
        const long long last = i + right;
        return last >= num_old ? last - num_old + 1 : 0;
    }
    return left + right + (loop ? 1 : 0);
}

extern "C" __global__ void count_runs(const POSITION_T* pos, const long long* segment_of, const long long* ptr,
                                      const POSITION_T r2, const long long first_target, const long long n,
                                      const long long num_old, const int loop, long long* left, long long* right,
                                      long long* count) {
    const long long t = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    const long long i = first_target + t;
    if (i >= n) return;
    const long long s = segment_of[i];
    const long long begin = ptr[s], end = ptr[s + 1];
    const POSITION_T p = pos[i];
    long long j = i - 1;
    while (j >= begin) { const POSITION_T d = pos[j] - p; if (!(d * d < r2)) break; --j; }
    left[t] = i - 1 - j;
    j = i + 1;
    while (j < end) { const POSITION_T d = pos[j] - p; if (!(d * d < r2)) break; ++j; }
    right[t] = j - i - 1;
    count[t] = edges_of_run(i, left[t], right[t], num_old, loop);
}

extern "C" __global__ void write_runs(const long long* left, const long long* right, const long long* offset,
                                      const long long first_target, const long long n, const long long num_old,
                                      const int loop, long long* source, long long* target) {
    const long long t = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    const long long i = first_target + t;
    if (i >= n) return;
    long long out = offset[t];
    for (long long j = i - left[t]; j <= i + right[t]; ++j) {
        if ((j == i && !loop) || (i < num_old && j < num_old)) continue;
        source[out] = j;
        target[out] = i;
        ++out;
    }
}

/* CUDA runtime API subset: devices, streams, events and errors. Everything runs synchronously, so
 * streams and events are only checked handles; events record wall-clock times. SIMT_DEVICES sets the
 * device count (default 1); 0 makes cudaGetDeviceCount fail with cudaErrorNoDevice as on a machine
 * without a GPU. */
#include "simt_internal.h"

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr unsigned stream_magic = 0x57eea3u, event_magic = 0xe7e27u;
int device_count = -1; /* -1: SIMT_DEVICES not read yet */
int current_device;
cudaError_t last_error = cudaSuccess;

} // namespace

struct CUstream_st {
    unsigned magic;
};
struct CUevent_st {
    unsigned magic;
    unsigned flags;
    bool recorded;
    std::chrono::steady_clock::time_point when;
};

void simt_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("simt: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    abort();
}

cudaError_t simt_record_error(cudaError_t e) {
    last_error = e;
    return e;
}

int simt_device_count() {
    if (device_count < 0) {
        const char *env = getenv("SIMT_DEVICES");
        char *end = nullptr;
        long n = env && *env ? strtol(env, &end, 10) : 1;
        if (env && *env && (*end || n < 0 || n > 64))
            simt_die("SIMT_DEVICES=%s: expected a device count from 0 to 64", env);
        device_count = (int)n;
    }
    return device_count;
}

void simt_check_stream(const void *stream, const char *who) {
    if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
        return;
    if (static_cast<const CUstream_st *>(stream)->magic != stream_magic)
        simt_die("%s: %p is not a live stream", who, stream);
}

static void check_event(const cudaEvent_t e, const char *who) {
    if (!e || e->magic != event_magic)
        simt_die("%s: %p is not a live event", who, (void *)e);
}

static cudaError_t check_device(int device) {
    if (simt_device_count() == 0)
        return simt_record_error(cudaErrorNoDevice);
    if (device < 0 || device >= device_count)
        return simt_record_error(cudaErrorInvalidDevice);
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *count) {
    if (!count)
        simt_die("cudaGetDeviceCount: NULL count");
    *count = simt_device_count();
    return *count ? cudaSuccess : simt_record_error(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int device) {
    cudaError_t e = check_device(device);
    if (e == cudaSuccess)
        current_device = device;
    return e;
}

cudaError_t cudaGetDevice(int *device) {
    if (!device)
        simt_die("cudaGetDevice: NULL device");
    *device = current_device;
    return simt_device_count() ? cudaSuccess : simt_record_error(cudaErrorNoDevice);
}

/* Reported limits follow an sm_90 part; totalGlobalMem matches cudaMemGetInfo. */
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (!prop)
        simt_die("cudaGetDeviceProperties: NULL prop");
    cudaError_t e = check_device(device);
    if (e != cudaSuccess)
        return e;
    size_t free_bytes, total;
    cudaMemGetInfo(&free_bytes, &total);
    std::memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "SIMT emulator");
    prop->totalGlobalMem = total;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->sharedMemPerBlockOptin = 227 * 1024;
    prop->sharedMemPerMultiprocessor = 228 * 1024;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 4;
    prop->maxThreadsPerMultiProcessor = 2048;
    prop->l2CacheSize = 50 * 1024 * 1024;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    if (!value)
        simt_die("cudaDeviceGetAttribute: NULL value");
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, device);
    if (e != cudaSuccess)
        return e;
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
        *value = p.maxThreadsPerBlock;
        break;
    case cudaDevAttrMaxBlockDimX:
        *value = p.maxThreadsDim[0];
        break;
    case cudaDevAttrMaxBlockDimY:
        *value = p.maxThreadsDim[1];
        break;
    case cudaDevAttrMaxBlockDimZ:
        *value = p.maxThreadsDim[2];
        break;
    case cudaDevAttrMaxGridDimX:
        *value = p.maxGridSize[0];
        break;
    case cudaDevAttrMaxGridDimY:
        *value = p.maxGridSize[1];
        break;
    case cudaDevAttrMaxGridDimZ:
        *value = p.maxGridSize[2];
        break;
    case cudaDevAttrMaxSharedMemoryPerBlock:
        *value = (int)p.sharedMemPerBlock;
        break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
        *value = (int)p.sharedMemPerBlockOptin;
        break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor:
        *value = (int)p.sharedMemPerMultiprocessor;
        break;
    case cudaDevAttrWarpSize:
        *value = p.warpSize;
        break;
    case cudaDevAttrMultiProcessorCount:
        *value = p.multiProcessorCount;
        break;
    case cudaDevAttrMaxThreadsPerMultiProcessor:
        *value = p.maxThreadsPerMultiProcessor;
        break;
    case cudaDevAttrComputeCapabilityMajor:
        *value = p.major;
        break;
    case cudaDevAttrComputeCapabilityMinor:
        *value = p.minor;
        break;
    case cudaDevAttrL2CacheSize:
        *value = p.l2CacheSize;
        break;
    default:
        simt_die("cudaDeviceGetAttribute: attribute %d is not emulated", (int)attr);
    }
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
    if (!func)
        simt_die("cudaFuncSetAttribute: NULL func");
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
        simt_die("cudaFuncSetAttribute: attribute %d is not emulated", (int)attr);
    if (value < 0 || value > 227 * 1024)
        return simt_record_error(cudaErrorInvalidValue);
    simt_raise_dynamic_shared_limit((size_t)value);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    return simt_device_count() ? cudaSuccess : simt_record_error(cudaErrorNoDevice);
}

cudaError_t cudaStreamCreate(cudaStream_t *pStream) {
    return cudaStreamCreateWithFlags(pStream, cudaStreamDefault);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags) {
    if (!pStream)
        simt_die("cudaStreamCreate: NULL pStream");
    if (flags & ~(unsigned)cudaStreamNonBlocking)
        simt_die("cudaStreamCreateWithFlags: unknown flags 0x%x", flags);
    *pStream = new CUstream_st{stream_magic};
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    if (!stream || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
        simt_die("cudaStreamDestroy: %p is not a created stream", (void *)stream);
    simt_check_stream(stream, "cudaStreamDestroy");
    stream->magic = 0;
    delete stream;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    simt_check_stream(stream, "cudaStreamSynchronize");
    return cudaSuccess;
}

/* Work completes at launch here, so a stream is idle, unless SIMT_STREAM_HANG=1 makes every stream look
 * busy forever: the failure injection that tests a caller's timeout path (a collective whose peer never
 * arrives). */
cudaError_t cudaStreamQuery(cudaStream_t stream) {
    simt_check_stream(stream, "cudaStreamQuery");
    const char *hang = getenv("SIMT_STREAM_HANG");
    return hang && !strcmp(hang, "1") ? cudaErrorNotReady : cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
    simt_check_stream(stream, "cudaStreamWaitEvent");
    check_event(event, "cudaStreamWaitEvent");
    if (flags & ~(unsigned)cudaEventWaitExternal)
        simt_die("cudaStreamWaitEvent: unknown flags 0x%x", flags);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
    if (!event)
        simt_die("cudaEventCreate: NULL event");
    if (flags & ~(unsigned)(cudaEventBlockingSync | cudaEventDisableTiming))
        simt_die("cudaEventCreateWithFlags: unsupported flags 0x%x", flags);
    *event = new CUevent_st{event_magic, flags, false, {}};
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    check_event(event, "cudaEventRecord");
    simt_check_stream(stream, "cudaEventRecord");
    event->recorded = true;
    event->when = std::chrono::steady_clock::now();
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    check_event(event, "cudaEventSynchronize");
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    check_event(event, "cudaEventDestroy");
    event->magic = 0;
    delete event;
    return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    if (!ms)
        simt_die("cudaEventElapsedTime: NULL ms");
    check_event(start, "cudaEventElapsedTime");
    check_event(end, "cudaEventElapsedTime");
    if ((start->flags | end->flags) & cudaEventDisableTiming)
        return simt_record_error(cudaErrorInvalidResourceHandle);
    if (!start->recorded || !end->recorded)
        return simt_record_error(cudaErrorInvalidResourceHandle);
    *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

namespace {
struct ErrorText {
    cudaError_t code;
    const char *name, *text;
};
/* The errors this emulator returns, with the runtime's own names and messages. */
const ErrorText error_texts[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
};
const ErrorText *error_text(cudaError_t e) {
    for (const ErrorText &t : error_texts)
        if (t.code == e)
            return &t;
    return nullptr;
}
} // namespace

const char *cudaGetErrorString(cudaError_t error) {
    const ErrorText *t = error_text(error);
    return t ? t->text : "unrecognized error code";
}

const char *cudaGetErrorName(cudaError_t error) {
    const ErrorText *t = error_text(error);
    return t ? t->name : "cudaErrorUnknown";
}

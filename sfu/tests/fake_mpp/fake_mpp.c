/*
 * A stand-in for librockchip_mpp, for testing r58's MPP encoder wrapper on machines without a
 * Rockchip VPU. It implements the C functions rockchip-mpp-sys resolves, with the signatures of
 * MPP's public headers, and "encodes" each frame into a fixed tiny H.264 access unit (SPS, PPS
 * and an IDR slice, or one non-IDR slice). What matters is what it records: every call that
 * the wrapper makes, with its arguments and the pixels it can see, appended as one line each to
 * the file FAKE_MPP_LOG, plus counts of live frames, packets, configs and buffers. Written for
 * this project's tests; not derived from MPP's implementation.
 *
 * Build: cc -shared -fPIC -DFAKE_MPP_LOG='"/tmp/log"' [-DFAKE_MPP_NO_H264] -o libfake.so fake_mpp.c
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef int MPP_RET;
typedef void *MppCtx, *MppFrame, *MppPacket, *MppBuffer, *MppBufferGroup, *MppEncCfg, *MppMeta;

#define MPP_OK 0
#define MPP_NOK (-1)
#define MPP_ERR_NULL_PTR (-3)
#define MPP_ERR_VALUE (-6)

/* rk_mpi_cmd.h values (checked by rockchip-mpp-sys's tests) */
#define MPP_SET_OUTPUT_TIMEOUT 0x200007
#define MPP_ENC_SET_CFG 0x320001
#define MPP_ENC_GET_CFG 0x320002
#define MPP_ENC_SET_IDR_FRAME 0x320009
#define MPP_ENC_SET_SEI_CFG 0x32000f
#define MPP_ENC_SET_HEADER_MODE 0x328001

static long live_frames, live_packets, live_buffers, live_cfgs;

#ifndef FAKE_MPP_LOG
#error "define FAKE_MPP_LOG as the log file's path"
#endif

static void logf_(const char *fmt, ...) {
    FILE *f = fopen(FAKE_MPP_LOG, "a");
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

/* ---- config: a small key/value table ---- */
typedef struct { char key[40]; int val; } Entry;
typedef struct { Entry e[64]; int n; } Cfg;

static int cfg_get(Cfg *c, const char *key, int def) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].key, key)) return c->e[i].val;
    return def;
}

MPP_RET mpp_enc_cfg_init(MppEncCfg *cfg) {
    *cfg = calloc(1, sizeof(Cfg));
    live_cfgs++;
    return MPP_OK;
}
MPP_RET mpp_enc_cfg_deinit(MppEncCfg cfg) {
    free(cfg);
    live_cfgs--;
    logf_("cfg_deinit live_cfgs=%ld", live_cfgs);
    return MPP_OK;
}
MPP_RET mpp_enc_cfg_set_s32(MppEncCfg cfg, const char *name, int val) {
    Cfg *c = cfg;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].key, name)) { c->e[i].val = val; return MPP_OK; }
    if (c->n == 64 || strlen(name) >= 40) return MPP_NOK;
    strcpy(c->e[c->n].key, name);
    c->e[c->n++].val = val;
    return MPP_OK;
}
MPP_RET mpp_enc_cfg_set_u32(MppEncCfg cfg, const char *name, unsigned val) {
    return mpp_enc_cfg_set_s32(cfg, name, (int)val);
}
MPP_RET mpp_enc_cfg_get_s32(MppEncCfg cfg, const char *name, int *val) {
    *val = cfg_get(cfg, name, 0);
    return MPP_OK;
}

/* ---- buffers ---- */
typedef struct { int refs; size_t size; unsigned char *ptr; int fd; int external; } Buf;
typedef struct { int type, mode; } Group;
typedef struct { int type; size_t size; void *ptr, *hnd; int fd, index; } BufferInfo;

static Buf *buf_new(void) { live_buffers++; Buf *b = calloc(1, sizeof(Buf)); b->refs = 1; b->fd = -1; return b; }
static void buf_unref(Buf *b) {
    if (!b) return;
    if (--b->refs == 0) {
        if (!b->external) free(b->ptr);
        else if (b->ptr) munmap(b->ptr, b->size);
        free(b);
        live_buffers--;
        logf_("free live_buffers=%ld", live_buffers);
    }
}

MPP_RET mpp_buffer_group_get(MppBufferGroup *group, int type, int mode, const char *tag, const char *caller) {
    Group *g = calloc(1, sizeof(Group));
    g->type = type; g->mode = mode;
    *group = g;
    logf_("group_get type=%d mode=%d", type, mode);
    return MPP_OK;
}
MPP_RET mpp_buffer_group_put(MppBufferGroup group) { free(group); logf_("group_put"); return MPP_OK; }
MPP_RET mpp_buffer_group_limit_config(MppBufferGroup group, size_t size, int count) { return MPP_OK; }
MPP_RET mpp_buffer_get_with_tag(MppBufferGroup group, MppBuffer *buffer, size_t size, const char *tag, const char *caller) {
    Buf *b = buf_new();
    b->size = size;
    b->ptr = calloc(1, size);
    *buffer = b;
    logf_("buffer_get size=%zu", size);
    return MPP_OK;
}
MPP_RET mpp_buffer_import_with_tag(MppBufferGroup group, BufferInfo *info, MppBuffer *buffer, const char *tag, const char *caller) {
    if (!info || info->fd < 0 || !info->size) return MPP_ERR_VALUE;
    Buf *b = buf_new();
    b->external = 1; b->fd = info->fd; b->size = info->size;
    *buffer = b;
    logf_("import type=%d fd_ok=1 size=%zu", info->type, info->size);
    return MPP_OK;
}
MPP_RET mpp_buffer_put_with_caller(MppBuffer buffer, const char *caller) { buf_unref(buffer); return MPP_OK; }
void *mpp_buffer_get_ptr_with_caller(MppBuffer buffer, const char *caller) { return ((Buf *)buffer)->ptr; }
int mpp_buffer_get_fd_with_caller(MppBuffer buffer, const char *caller) { return ((Buf *)buffer)->fd; }
size_t mpp_buffer_get_size_with_caller(MppBuffer buffer, const char *caller) { return ((Buf *)buffer)->size; }

/* ---- frames ---- */
typedef struct { unsigned w, h, hs, vs; int fmt; long long pts; unsigned eos; Buf *buf; } Frame;

MPP_RET mpp_frame_init(MppFrame *frame) { *frame = calloc(1, sizeof(Frame)); live_frames++; return MPP_OK; }
MPP_RET mpp_frame_deinit(MppFrame *frame) {
    if (!frame || !*frame) return MPP_ERR_NULL_PTR;
    Frame *f = *frame;
    buf_unref(f->buf);
    free(f);
    *frame = NULL;
    live_frames--;
    return MPP_OK;
}
void mpp_frame_set_width(MppFrame f, unsigned v) { ((Frame *)f)->w = v; }
void mpp_frame_set_height(MppFrame f, unsigned v) { ((Frame *)f)->h = v; }
void mpp_frame_set_hor_stride(MppFrame f, unsigned v) { ((Frame *)f)->hs = v; }
void mpp_frame_set_ver_stride(MppFrame f, unsigned v) { ((Frame *)f)->vs = v; }
void mpp_frame_set_fmt(MppFrame f, int v) { ((Frame *)f)->fmt = v; }
void mpp_frame_set_pts(MppFrame f, long long v) { ((Frame *)f)->pts = v; }
void mpp_frame_set_eos(MppFrame f, unsigned v) { ((Frame *)f)->eos = v; }
void mpp_frame_set_buffer(MppFrame frame, MppBuffer buffer) {
    Frame *f = frame;
    if (buffer) ((Buf *)buffer)->refs++;
    buf_unref(f->buf);
    f->buf = buffer;
}
MppMeta mpp_frame_get_meta(MppFrame frame) { return NULL; }

/* ---- packets ---- */
typedef struct { unsigned char *data; size_t len; } Packet;

MPP_RET mpp_packet_init(MppPacket *packet, void *data, size_t size) {
    Packet *p = calloc(1, sizeof(Packet));
    p->data = data; p->len = size;
    *packet = p;
    live_packets++;
    return MPP_OK;
}
MPP_RET mpp_packet_deinit(MppPacket *packet) {
    if (!packet || !*packet) return MPP_ERR_NULL_PTR;
    Packet *p = *packet;
    free(p->data);
    free(p);
    *packet = NULL;
    live_packets--;
    return MPP_OK;
}
void *mpp_packet_get_pos(MppPacket p) { return ((Packet *)p)->data; }
size_t mpp_packet_get_length(MppPacket p) { return ((Packet *)p)->len; }
void mpp_packet_set_length(MppPacket p, size_t len) { ((Packet *)p)->len = len; }
long long mpp_packet_get_pts(MppPacket p) { return 0; }
unsigned mpp_packet_get_flag(MppPacket p) { return 0; }
unsigned mpp_packet_get_eos(MppPacket p) { return 0; }
int mpp_packet_has_meta(MppPacket p) { return 0; }
MppMeta mpp_packet_get_meta(MppPacket p) { return NULL; }
unsigned mpp_packet_is_partition(MppPacket p) { return 0; }
unsigned mpp_packet_is_eoi(MppPacket p) { return 1; }
MPP_RET mpp_meta_get_s32(MppMeta meta, int key, int *val) { return MPP_NOK; }
MPP_RET mpp_meta_set_s32(MppMeta meta, int key, int val) { return MPP_NOK; }

/* ---- the context and its function table ---- */
typedef struct {
    unsigned size, version;
    void *fns[14];
    unsigned reserv[16];
} Api;

typedef struct {
    Api api;
    int inited, idr_requested, frames_since_idr, header_mode;
    Cfg cfg;
    Packet *out;
} Ctx;

static MPP_RET api_control(MppCtx ctx, int cmd, void *param) {
    Ctx *c = ctx;
    switch (cmd) {
    case MPP_SET_OUTPUT_TIMEOUT: logf_("control output_timeout=%d", *(int *)param); return MPP_OK;
    case MPP_ENC_GET_CFG: return MPP_OK;
    case MPP_ENC_SET_CFG: {
        Cfg *cfg = param;
        c->cfg = *cfg;
        char line[2048] = "set_cfg";
        for (int i = 0; i < cfg->n; i++) {
            char kv[64];
            snprintf(kv, sizeof kv, " %s=%d", cfg->e[i].key, cfg->e[i].val);
            strncat(line, kv, sizeof line - strlen(line) - 1);
        }
        logf_("%s", line);
        return MPP_OK;
    }
    case MPP_ENC_SET_IDR_FRAME: c->idr_requested = 1; logf_("control idr"); return MPP_OK;
    case MPP_ENC_SET_HEADER_MODE: c->header_mode = *(int *)param; logf_("control header_mode=%d", c->header_mode); return MPP_OK;
    case MPP_ENC_SET_SEI_CFG: logf_("control sei=%d", *(int *)param); return MPP_OK;
    default: logf_("control unknown=%d", cmd); return MPP_NOK;
    }
}

static const unsigned char SPS_PPS[] = {0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40,
                                        0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80};

static MPP_RET api_put_frame(MppCtx ctx, MppFrame frame) {
    Ctx *c = ctx;
    Frame *f = frame;
    if (!c->inited || !f || !f->buf) return MPP_ERR_NULL_PTR;
    Buf *b = f->buf;
    const unsigned char *px = b->ptr;
    if (b->external && !b->ptr) {
        void *m = mmap(NULL, b->size, PROT_READ, MAP_SHARED, b->fd, 0);
        if (m != MAP_FAILED) { b->ptr = m; px = m; }
    }
    /* The first luma byte, the last luma byte of the picture, and the first chroma byte. */
    size_t last = (size_t)(f->h - 1) * f->hs + (f->fmt == 8 ? 2 * f->w : f->w) - 1;
    size_t chroma = (size_t)f->hs * f->vs;
    int y0 = px ? px[0] : -1;
    int ylast = px && last < b->size ? px[last] : -1;
    int c0 = px && chroma < b->size && f->fmt != 8 ? px[chroma] : -1;
    int gop = cfg_get(&c->cfg, "rc:gop", 30);
    int idr = c->idr_requested || c->frames_since_idr == 0 || c->frames_since_idr >= gop;
    logf_("put_frame w=%u h=%u hs=%u vs=%u fmt=%d pts=%lld external=%d y0=%d ylast=%d c0=%d idr=%d",
          f->w, f->h, f->hs, f->vs, f->fmt, f->pts, b->external, y0, ylast, c0, idr);
    c->idr_requested = 0;
    c->frames_since_idr = idr ? 1 : c->frames_since_idr + 1;
    size_t len = (idr ? sizeof SPS_PPS : 0) + 8;
    unsigned char *data = malloc(len), *p = data;
    if (idr) { memcpy(p, SPS_PPS, sizeof SPS_PPS); p += sizeof SPS_PPS; }
    const unsigned char slice[8] = {0, 0, 0, 1, idr ? 0x65 : 0x41, 0x88, 0x84, (unsigned char)f->pts};
    memcpy(p, slice, 8);
    if (c->out) return MPP_NOK; /* the previous packet was never taken */
    mpp_packet_init((MppPacket *)&c->out, data, len);
    return MPP_OK;
}

static MPP_RET api_get_packet(MppCtx ctx, MppPacket *packet) {
    Ctx *c = ctx;
    *packet = c->out;
    c->out = NULL;
    return MPP_OK;
}

static MPP_RET api_reset(MppCtx ctx) { logf_("reset"); return MPP_OK; }

MPP_RET mpp_check_support_format(int type, int coding) {
#ifdef FAKE_MPP_NO_H264
    return MPP_NOK;
#else
    return type == 1 && coding == 7 ? MPP_OK : MPP_NOK;
#endif
}

MPP_RET mpp_create(MppCtx *ctx, Api **mpi) {
    Ctx *c = calloc(1, sizeof(Ctx));
    c->api.size = sizeof(Api);
    c->api.fns[4] = (void *)api_put_frame;  /* encode_put_frame */
    c->api.fns[5] = (void *)api_get_packet; /* encode_get_packet */
    c->api.fns[12] = (void *)api_reset;
    c->api.fns[13] = (void *)api_control;
    *ctx = c;
    *mpi = &c->api;
    logf_("create");
    return MPP_OK;
}

MPP_RET mpp_init(MppCtx ctx, int type, int coding) {
    ((Ctx *)ctx)->inited = 1;
    logf_("init type=%d coding=%d", type, coding);
    return MPP_OK;
}

MPP_RET mpp_destroy(MppCtx ctx) {
    Ctx *c = ctx;
    if (c->out) mpp_packet_deinit((MppPacket *)&c->out);
    free(c);
    logf_("destroy live_frames=%ld live_packets=%ld", live_frames, live_packets);
    return MPP_OK;
}

/* image_io.c — kiln_image allocation, JPEG/PNG decoding (libjpeg-turbo, libpng) with
 * setjmp error recovery and size limits, channel conversion, and PNG/JPEG saving. */
#include "core/core.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
/* jpeglib.h needs FILE and size_t declared first */
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* Decompression-bomb guard: refuse headers claiming more than this before allocating. */
#define IMG_MAX_SIDE 32768
#define IMG_MAX_PIXELS ((int64_t)1 << 28)

static kiln_status image_check_size(int64_t w, int64_t h)
{
    if (w <= 0 || h <= 0) return core_error(KILN_ERR_PARSE, "image has empty size %lldx%lld", (long long)w, (long long)h);
    if (w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || w * h > IMG_MAX_PIXELS)
        return core_error(KILN_ERR_UNSUPPORTED,
                          "image size %lldx%lld exceeds the limit (%d px per side, %lld pixels)", (long long)w,
                          (long long)h, IMG_MAX_SIDE, (long long)IMG_MAX_PIXELS);
    return KILN_OK;
}

KILN_API kiln_status kiln_image_create(int width, int height, int channels, kiln_image *out)
{
    if (!out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_create: out is NULL");
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_create: size %dx%d is empty or negative", width,
                          height);
    if (channels != 1 && channels != 3 && channels != 4)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_create: channels is %d, expected 1, 3 or 4",
                          channels);
    int64_t stride = (int64_t)width * channels, bytes;
    if (stride > INT32_MAX || !core_mul_size(stride, height, &bytes) || (uint64_t)bytes > SIZE_MAX / 2)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_create: size %dx%dx%d is too large", width, height,
                          channels);
    out->data = core_calloc((size_t)bytes, 1);
    if (!out->data) return core_oom();
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->stride = (int)stride;
    out->owned = 1;
    return KILN_OK;
}

KILN_API kiln_image kiln_image_wrap(uint8_t *data, int width, int height, int channels, int stride)
{
    kiln_image img;
    img.width = width;
    img.height = height;
    img.channels = channels;
    img.stride = stride > 0 ? stride : width * channels;
    img.data = data;
    img.owned = 0;
    return img;
}

KILN_API void kiln_image_free(kiln_image *img)
{
    if (!img) return;
    if (img->owned) free(img->data);
    memset(img, 0, sizeof *img);
}

/* ---- channel conversion ------------------------------------------------------------ */

/* BT.601 luma with OpenCV's 14-bit fixed-point weights (cvtColor RGB2GRAY). */
static inline uint8_t rgb_to_gray(const uint8_t *p)
{
    return (uint8_t)((p[0] * 4899 + p[1] * 9617 + p[2] * 1868 + 8192) >> 14);
}

/* Converts a packed buffer of `in_c` channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) into a
 * new image of `want` channels (1, 3 or 4). */
static kiln_status image_from_packed(const uint8_t *src, int w, int h, int in_c, int want, kiln_image *out)
{
    kiln_status st = kiln_image_create(w, h, want, out);
    if (st) return st;
    for (int y = 0; y < h; y++) {
        const uint8_t *s = src + (size_t)y * w * in_c;
        uint8_t *d = out->data + (size_t)y * out->stride;
        if (in_c == want) {
            memcpy(d, s, (size_t)w * want);
            continue;
        }
        for (int x = 0; x < w; x++, s += in_c, d += want) {
            uint8_t r, g, b, a = 255;
            switch (in_c) {
            case 1: r = g = b = s[0]; break;
            case 2: r = g = b = s[0]; a = s[1]; break;
            case 3: r = s[0], g = s[1], b = s[2]; break;
            default: r = s[0], g = s[1], b = s[2], a = s[3]; break;
            }
            if (want == 1) {
                const uint8_t rgb[3] = {r, g, b};
                d[0] = (in_c <= 2) ? r : rgb_to_gray(rgb);
            } else {
                d[0] = r, d[1] = g, d[2] = b;
                if (want == 4) d[3] = a;
            }
        }
    }
    return KILN_OK;
}

/* want = 0 keeps the stored layout: gray 1, gray+alpha 4, RGB 3, RGBA 4. */
static int want_for(int in_c, int want)
{
    if (want) return want;
    return in_c == 2 ? 4 : in_c;
}

/* ---- JPEG -------------------------------------------------------------------------- */

typedef struct jpeg_job {
    struct jpeg_error_mgr pub; /* first: libjpeg hands us a pointer to this */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    int truncated;
    /* state the setjmp frame must see after a longjmp */
    union {
        struct jpeg_decompress_struct d;
        struct jpeg_compress_struct c;
    } u;
    uint8_t *pixels;
    uint8_t *row;
    FILE *file;
} jpeg_job;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_job *job = (jpeg_job *)cinfo->err;
    cinfo->err->format_message(cinfo, job->msg);
    longjmp(job->jb, 1);
}

/* Warnings are kept quiet; running out of data is fatal for us (libjpeg would pad the image
 * with grey and call it a success). */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    jpeg_job *job = (jpeg_job *)cinfo->err;
    if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        job->truncated = 1;
        cinfo->err->format_message(cinfo, job->msg);
        longjmp(job->jb, 1);
    }
}

static kiln_status jpeg_decode_body(jpeg_job *job, const uint8_t *data, size_t size, int want, kiln_image *out)
{
    struct jpeg_decompress_struct *d = &job->u.d;
    jpeg_mem_src(d, data, (unsigned long)size);
    jpeg_read_header(d, TRUE);
    kiln_status st = image_check_size(d->image_width, d->image_height);
    if (st) return st;
    int in_c;
    if (d->jpeg_color_space == JCS_CMYK || d->jpeg_color_space == JCS_YCCK) {
        d->out_color_space = JCS_CMYK;
        in_c = 4;
    } else if (d->num_components == 1 || want == 1) {
        d->out_color_space = JCS_GRAYSCALE;
        in_c = 1;
    } else {
        d->out_color_space = JCS_RGB;
        in_c = 3;
    }
    jpeg_start_decompress(d);
    int w = (int)d->output_width, h = (int)d->output_height;
    if ((int)d->output_components != in_c)
        return core_error(KILN_ERR_UNSUPPORTED, "JPEG decoder produced %d components, expected %d",
                          d->output_components, in_c);
    size_t row_bytes = (size_t)w * in_c;
    job->pixels = core_malloc(row_bytes * h);
    if (!job->pixels) return core_oom();
    while (d->output_scanline < d->output_height) {
        JSAMPROW r = job->pixels + row_bytes * d->output_scanline;
        jpeg_read_scanlines(d, &r, 1);
    }
    jpeg_finish_decompress(d);
    if (in_c == 4) {
        /* Adobe CMYK JPEGs store inverted ink values: R = C * K / 255 on the stored bytes. */
        for (size_t i = 0; i < (size_t)w * h; i++) {
            uint8_t *p = job->pixels + i * 4;
            int k = p[3];
            p[0] = (uint8_t)((p[0] * k + 127) / 255);
            p[1] = (uint8_t)((p[1] * k + 127) / 255);
            p[2] = (uint8_t)((p[2] * k + 127) / 255);
            p[3] = 255;
        }
        if (!want) want = 3;
    }
    return image_from_packed(job->pixels, w, h, in_c, want_for(in_c, want), out);
}

static kiln_status jpeg_decode(const uint8_t *data, size_t size, int want, kiln_image *out)
{
    jpeg_job *job = core_calloc(1, sizeof *job);
    if (!job) return core_oom();
    kiln_status st;
    job->u.d.err = jpeg_std_error(&job->pub);
    job->pub.error_exit = jpeg_on_error;
    job->pub.emit_message = jpeg_on_message;
    if (setjmp(job->jb)) {
        st = core_error(KILN_ERR_PARSE, "%s JPEG: %s", job->truncated ? "truncated" : "corrupt", job->msg);
        kiln_image_free(out);
    } else {
        jpeg_create_decompress(&job->u.d);
        st = jpeg_decode_body(job, data, size, want, out);
    }
    jpeg_destroy_decompress(&job->u.d);
    free(job->pixels);
    free(job);
    return st;
}

/* ---- PNG --------------------------------------------------------------------------- */

typedef struct png_job {
    jmp_buf jb;
    char msg[256];
    const uint8_t *data;
    size_t size, pos;
    png_structp png;
    png_infop info;
    uint8_t *pixels;
    png_bytep *rows;
    FILE *file;
} png_job;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_job *job = png_get_error_ptr(png);
    snprintf(job->msg, sizeof job->msg, "%s", msg ? msg : "unknown error");
    longjmp(job->jb, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_read_mem(png_structp png, png_bytep buf, png_size_t n)
{
    png_job *job = png_get_io_ptr(png);
    if (n > job->size - job->pos) png_error(png, "file is truncated");
    memcpy(buf, job->data + job->pos, n);
    job->pos += n;
}

static kiln_status png_decode_body(png_job *job, int want, kiln_image *out)
{
    png_structp png = job->png;
    png_infop info = job->info;
    png_set_read_fn(png, job, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    kiln_status st = image_check_size(w, h);
    if (st) return st;
    int ctype = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int in_c = png_get_channels(png, info);
    if (in_c < 1 || in_c > 4 || png_get_bit_depth(png, info) != 8)
        return core_error(KILN_ERR_UNSUPPORTED, "PNG: unexpected layout after expansion (%d channels, %d bits)",
                          in_c, png_get_bit_depth(png, info));
    size_t row_bytes = png_get_rowbytes(png, info);
    if (row_bytes != (size_t)w * in_c) return core_error(KILN_ERR_UNSUPPORTED, "PNG: unexpected row size");
    job->pixels = core_malloc(row_bytes * h);
    job->rows = core_malloc(sizeof *job->rows * h);
    if (!job->pixels || !job->rows) return core_oom();
    for (png_uint_32 y = 0; y < h; y++) job->rows[y] = job->pixels + row_bytes * y;
    png_read_image(png, job->rows);
    png_read_end(png, NULL);
    return image_from_packed(job->pixels, (int)w, (int)h, in_c, want_for(in_c, want), out);
}

static kiln_status png_decode(const uint8_t *data, size_t size, int want, kiln_image *out)
{
    png_job *job = core_calloc(1, sizeof *job);
    if (!job) return core_oom();
    kiln_status st;
    job->data = data;
    job->size = size;
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, png_on_error, png_on_warning);
    if (job->png) job->info = png_create_info_struct(job->png);
    if (!job->png || !job->info) {
        st = core_oom();
    } else if (setjmp(job->jb)) {
        st = core_error(KILN_ERR_PARSE, "corrupt PNG: %s", job->msg);
        kiln_image_free(out);
    } else {
        st = png_decode_body(job, want, out);
    }
    if (job->png) png_destroy_read_struct(&job->png, job->info ? &job->info : NULL, NULL);
    free(job->pixels);
    free(job->rows);
    free(job);
    return st;
}

KILN_API kiln_status kiln_image_decode(const void *data, size_t size, int want_channels, kiln_image *out)
{
    if (!out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_decode: out is NULL");
    memset(out, 0, sizeof *out);
    if (!data && size) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_decode: data is NULL");
    if (want_channels != 0 && want_channels != 1 && want_channels != 3 && want_channels != 4)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "want_channels is %d, expected 0, 1, 3 or 4", want_channels);
    const uint8_t *p = data;
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return jpeg_decode(p, size, want_channels, out);
    if (size >= 8 && !memcmp(p, png_magic, 8)) return png_decode(p, size, want_channels, out);
    if (size == 0) return core_error(KILN_ERR_PARSE, "image data is empty");
    char hex[3 * 8 + 1] = {0};
    for (size_t i = 0; i < size && i < 8; i++) snprintf(hex + 3 * i, 4, "%02x ", p[i]);
    hex[strlen(hex) - 1] = 0;
    return core_error(KILN_ERR_UNSUPPORTED, "unknown image format (first bytes %s; expected JPEG or PNG)", hex);
}

KILN_API kiln_status kiln_image_load(const char *path, int want_channels, kiln_image *out)
{
    if (!path || !out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_load: NULL argument");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return core_error(KILN_ERR_IO, "cannot open image '%s'", path);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return core_oom();
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return core_error(KILN_ERR_IO, "cannot read image '%s'", path);
    }
    kiln_status st = kiln_image_decode(buf, len, want_channels, out);
    free(buf);
    if (st) core_error_prefix(st, "image '%s': ", path);
    return st;
}

/* ---- saving ------------------------------------------------------------------------ */

static kiln_status png_save_body(png_job *job, const kiln_image *img)
{
    png_structp png = job->png;
    png_init_io(png, job->file);
    int ctype = img->channels == 1 ? PNG_COLOR_TYPE_GRAY : img->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA;
    png_set_IHDR(png, job->info, (png_uint_32)img->width, (png_uint_32)img->height, 8, ctype, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, job->info);
    for (int y = 0; y < img->height; y++) png_write_row(png, img->data + (size_t)y * img->stride);
    png_write_end(png, NULL);
    return KILN_OK;
}

static kiln_status png_save(FILE *f, const kiln_image *img)
{
    png_job *job = core_calloc(1, sizeof *job);
    if (!job) return core_oom();
    kiln_status st;
    job->file = f;
    job->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job, png_on_error, png_on_warning);
    if (job->png) job->info = png_create_info_struct(job->png);
    if (!job->png || !job->info)
        st = core_oom();
    else if (setjmp(job->jb))
        st = core_error(KILN_ERR_IO, "PNG encoder: %s", job->msg);
    else
        st = png_save_body(job, img);
    if (job->png) png_destroy_write_struct(&job->png, job->info ? &job->info : NULL);
    free(job);
    return st;
}

static kiln_status jpeg_save_body(jpeg_job *job, const kiln_image *img, int quality)
{
    struct jpeg_compress_struct *c = &job->u.c;
    jpeg_stdio_dest(c, job->file);
    c->image_width = (JDIMENSION)img->width;
    c->image_height = (JDIMENSION)img->height;
    c->input_components = img->channels == 1 ? 1 : 3;
    c->in_color_space = img->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, quality, TRUE);
    if (img->channels == 4) {
        job->row = core_malloc((size_t)img->width * 3);
        if (!job->row) return core_oom();
    }
    jpeg_start_compress(c, TRUE);
    while (c->next_scanline < c->image_height) {
        uint8_t *src = img->data + (size_t)c->next_scanline * img->stride;
        JSAMPROW r = src;
        if (img->channels == 4) { /* JPEG has no alpha: drop it */
            for (int x = 0; x < img->width; x++) memcpy(job->row + 3 * x, src + 4 * x, 3);
            r = job->row;
        }
        jpeg_write_scanlines(c, &r, 1);
    }
    jpeg_finish_compress(c);
    return KILN_OK;
}

static kiln_status jpeg_save(FILE *f, const kiln_image *img, int quality)
{
    jpeg_job *job = core_calloc(1, sizeof *job);
    if (!job) return core_oom();
    kiln_status st;
    job->file = f;
    job->u.c.err = jpeg_std_error(&job->pub);
    job->pub.error_exit = jpeg_on_error;
    job->pub.emit_message = jpeg_on_message;
    if (setjmp(job->jb)) {
        st = core_error(KILN_ERR_IO, "JPEG encoder: %s", job->msg);
    } else {
        jpeg_create_compress(&job->u.c);
        st = jpeg_save_body(job, img, quality);
    }
    jpeg_destroy_compress(&job->u.c);
    free(job->row);
    free(job);
    return st;
}

KILN_API kiln_status kiln_image_save(const char *path, const kiln_image *img, int quality)
{
    if (!path || !img) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_save: NULL argument");
    if (!img->data || img->width <= 0 || img->height <= 0 ||
        (img->channels != 1 && img->channels != 3 && img->channels != 4) || img->stride < img->width * img->channels)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "cannot save '%s': invalid image (%dx%d, %d channels, stride %d)",
                          path, img->width, img->height, img->channels, img->stride);
    if (quality == 0) quality = 90;
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && slash && dot < slash) dot = NULL;
    int is_png = dot && !strcasecmp(dot, ".png");
    int is_jpeg = dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
    if (!is_png && !is_jpeg)
        return core_error(KILN_ERR_UNSUPPORTED, "cannot save '%s': unknown extension (use .png, .jpg or .jpeg)", path);
    if (is_jpeg && (quality < 1 || quality > 100))
        return core_error(KILN_ERR_INVALID_ARGUMENT, "cannot save '%s': JPEG quality %d is not in 1..100", path,
                          quality);
    FILE *f = fopen(path, "wb");
    if (!f) return core_error(KILN_ERR_IO, "cannot open '%s' for writing", path);
    kiln_status st = is_png ? png_save(f, img) : jpeg_save(f, img, quality);
    if (fclose(f) != 0 && !st) st = core_error(KILN_ERR_IO, "error writing '%s'", path);
    if (st) {
        remove(path);
        core_error_prefix(st, "image '%s': ", path);
    }
    return st;
}

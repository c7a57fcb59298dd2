/* Parameters-only checkpoints written, and any checkpoint's parameters read, one tensor at a time by one
 * process (bin/convert): peak memory is one tensor whatever the model's size. The files are ordinary
 * checkpoints (ckpt.h) without the /optim group, with the same root attributes and block checksums, so
 * bin/train loads them in any layout (train.init_from, --eval-only, --resume). */
#ifndef MT_CKPT_STREAM_H
#define MT_CKPT_STREAM_H

#include "model/params.h"
#include "train/ckpt.h"

typedef struct ckpt_writer ckpt_writer;

/* Starts PATH.tmp with meta's root attributes; the tensors of t follow through ckpt_writer_put, in any
 * order. Datasets go through MPI-IO on MPI_COMM_SELF, as ckpt_save writes them: MPI is initialized here if
 * the program has not done it (the program then calls MPI_Finalize before it exits). */
ckpt_writer *ckpt_writer_open(const char *path, const ckpt_meta *meta, const param_table *t, mt_err *err);

/* Tensor i of the table: its global shape, row-major. */
int ckpt_writer_put(ckpt_writer *w, int i, const float *data, mt_err *err);

/* With every tensor written and abandon 0: closes, fsyncs and renames PATH.tmp to PATH, and returns 0.
 * Otherwise (or on a failure, with err set) removes PATH.tmp, leaving PATH as it was, and returns -1.
 * Frees w. */
int ckpt_writer_close(ckpt_writer *w, int abandon, mt_err *err);

typedef struct ckpt_reader ckpt_reader;

/* Opens a checkpoint and reads its root attributes (checked as ckpt_load checks them). */
ckpt_reader *ckpt_reader_open(const char *path, ckpt_meta *meta, mt_err *err);

/* The global tensor /params/<p->name> into out (p's global shape), every block checksum verified. */
int ckpt_reader_get(ckpt_reader *r, const param_info *p, float *out, mt_err *err);

void ckpt_reader_close(ckpt_reader *r);

#endif

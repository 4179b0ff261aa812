/** Sizes in configuration are MiB (Firehose's "MBs" are mebibytes). */
export const MiB = 1024 * 1024;

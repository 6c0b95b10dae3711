/** What this machine's CPU means for a conversion. */
import { readFileSync } from 'node:fs';

/**
 * Whether onnxruntime's u8×s8 int8 kernels add products in 16 bits here and so saturate with
 * full-range weights: x86 without VNNI (AVX-512 VNNI, AVX-VNNI or AMX). ARM's dot-product
 * kernels and VNNI accumulate in 32 bits.
 */
export function int8Saturates(): boolean {
  if (process.arch !== 'x64' && process.arch !== 'ia32') return false;
  let flags = '';
  try {
    flags = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return true; // unknown: the safe choice
  }
  return !/\b(avx512_vnni|avx_vnni|amx_int8)\b/.test(flags);
}

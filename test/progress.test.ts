/* eslint-disable no-control-regex -- a terminal progress bar is made of control characters */
import { describe, expect, it } from 'vitest';
import { ProgressReporter } from '../src/progress.js';

describe('progress of a long operation', () => {
  it('on a terminal: one bar redrawn in place with counts, rate and ETA, ended by a newline', () => {
    let out = '';
    const bar = new ProgressReporter((t) => (out += t), true, 'redrive s');
    bar.update({ done: 250, total: 1_000, bytes: 2 * 1048576, unit: 'entries' }, true);
    bar.finish({ done: 1_000, total: 1_000, bytes: 8 * 1048576, unit: 'entries' });
    const frames = out.split('\r').filter(Boolean);
    expect(frames[0]).toMatch(/^redrive s \[#{8}\.{22}\] 25% {2}250\/1,000 entries {2}2\.0 MiB {2}[\d,]+\/s {2}ETA \S+\x1b\[K$/);
    expect(frames[1]).toMatch(/^redrive s \[#{30}\] 100% {2}1,000\/1,000 entries {2}8\.0 MiB .*ETA 0s\x1b\[K\n$/);
  });

  it('elsewhere: plain lines, no control characters', () => {
    let out = '';
    const bar = new ProgressReporter((t) => (out += t), false, 'redrive s');
    bar.update({ done: 10, total: 20, bytes: 0, unit: 'entries' }, true);
    bar.finish({ done: 20, total: 20, bytes: 0, unit: 'entries' });
    expect(out.split('\n').filter(Boolean)).toHaveLength(2);
    expect(out).not.toMatch(/[\r\x1b]/);
    expect(out).toContain('redrive s: 20/20 entries');
  });
});

// settleAll: every promise settles before a failure is thrown, and the failure thrown is the
// first in the given order, not the first in time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { settleAll } from '../builder/settle-all.js';

test('settleAll gives the values in order when none fails', async () => {
  assert.deepEqual(await settleAll([sleep(20).then(() => 'a'), Promise.resolve('b'), sleep(5).then(() => 'c')]), ['a', 'b', 'c']);
});

test('settleAll throws the first failure in order, once the slower work has finished', async () => {
  let slowDone = false;
  const slow = sleep(30).then(() => {
    slowDone = true;
    return 'slow';
  });
  const later = sleep(20).then(() => Promise.reject(new Error('second in order')));
  const sooner = Promise.reject(new Error('third in order, first in time'));
  await assert.rejects(settleAll([slow, later, sooner]), /second in order/);
  assert.equal(slowDone, true);
});

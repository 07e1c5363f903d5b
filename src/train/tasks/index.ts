/** The task registry of `mega train --task`. */
import type { TaskName } from '../args.js';
import { imageTask } from './image.js';
import { listopsTask } from './listops.js';
import { lmTask } from './lm.js';
import { speechTask } from './speech.js';
import { retrievalTask, textTask } from './text.js';
import { translationTask } from './translation.js';
import type { TrainTask } from './types.js';

export type { Split, StepOutput, TaskData, TrainTask } from './types.js';

const TASK_TABLE: Readonly<Record<TaskName, TrainTask>> = {
  listops: listopsTask,
  text: textTask,
  retrieval: retrievalTask,
  image: imageTask,
  lm: lmTask,
  translation: translationTask,
  speech: speechTask,
};

/** The task of a name. */
export function getTask(name: TaskName): TrainTask {
  return TASK_TABLE[name];
}

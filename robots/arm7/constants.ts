/** Names inside robots/arm7/arm7.xml that code refers to; one place so a rename breaks loudly. */
export const ARM7_XML = new URL('./arm7.xml', import.meta.url);

export const ARM_JOINTS = ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6', 'joint7'] as const;
export const FINGER_JOINTS = ['finger_left_joint', 'finger_right_joint'] as const;
export const ARM_ACTUATORS = [
  'act_joint1',
  'act_joint2',
  'act_joint3',
  'act_joint4',
  'act_joint5',
  'act_joint6',
  'act_joint7',
] as const;
export const FINGER_ACTUATORS = ['act_finger_left', 'act_finger_right'] as const;

/** Site midway between the fingertips: the point the end-effector controller moves. */
export const GRIP_SITE = 'grip_site';
export const HAND_BODY = 'hand';
export const FINGER_BODIES = ['finger_left', 'finger_right'] as const;
export const WRIST_CAMERA = 'wrist';

/** Each finger travels 0..FINGER_TRAVEL metres from the centre line. */
export const FINGER_TRAVEL = 0.04;

/**
 * Ready pose: fingertips at about (0.45, 0, 0.19) pointing straight down, elbow up, fingers open.
 * Worked out by hand from the link lengths (planar two-link solution for the shoulder and elbow, wrist pitch
 * chosen so that joint2 + joint4 + joint6 = pi).
 */
export const HOME_QPOS = [0, 0.362, 0, 1.704, 0, 1.077, 0] as const;

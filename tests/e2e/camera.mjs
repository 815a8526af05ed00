// Chromium's fake camera showing a test photo, for the e2e checks and the live benchmarks.
import { execFileSync } from 'node:child_process';

/// Writes `photo` as a 2 s, 10 fps, 640x480 video to `y4m` (ffmpeg; throws without it) and
/// returns the Chromium flags that make it the camera, permission granted.
export function fakeCameraArgs(photo, y4m) {
  execFileSync('ffmpeg', ['-y', '-loglevel', 'error', '-loop', '1', '-i', photo, '-t', '2', '-r', '10', '-vf', 'scale=640:480', '-pix_fmt', 'yuv420p', y4m]);
  return ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${y4m}`];
}

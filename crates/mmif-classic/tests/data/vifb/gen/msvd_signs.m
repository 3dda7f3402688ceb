% MSVD (VIFB's methods/MSVD, not part of mmif) under GNU Octave on many crops, recording whether
% LAPACK's singular vectors of the two sources point the same way. Documentation only.
% Usage, from the repository root, VIFB checked out at data/VIFB and the CDDFuse repository's
% test_img at data/CDDFuse/test_img:
%   octave-cli crates/mmif-classic/tests/data/vifb/gen/msvd_signs.m OUT_DIR
% Writes OUT_DIR/{ir,vi,vifb}/<name>.png (gray crops; RoadScene's colour visible images through
% rgb2gray, so that VIFB's gray path runs) and prints "<name> d1 d2 d3 d4", d_k the dot product of
% column k of U_IR and U_VI (mmif turns U_VI's columns so that every d_k >= 0).
% With a 4th argument `refs`, the committed inputs of ../inputs are run instead (VIFB's own
% colour handling) and the results written to ../msvd/.
pkg load image
args = argv();
out = args{1};
root = pwd;
addpath(fullfile(root, 'data/VIFB/methods/MSVD'));
src = fullfile(root, 'data/CDDFuse/test_img');
cases = {};
if numel(args) >= 2 && strcmp(args{2}, 'refs')
  inputs = fullfile(root, 'crates/mmif-classic/tests/data/vifb/inputs');
  files = dir(fullfile(inputs, '*_ir.png'));
  for k = 1:numel(files)
    name = files(k).name(1:end-7);
    cases(end+1, :) = {name, fullfile(inputs, [name '_ir.png']), fullfile(inputs, [name '_vi.png']), 0, 0, 0, 0};
  end
else
  sizes = [48 64; 96 128];
  t = dir(fullfile(src, 'TNO/ir/*.png'));
  for k = 1:numel(t)
    for s = 1:2
      cases(end+1, :) = {sprintf('tno%s_%dx%d', t(k).name(1:end-4), sizes(s, 2), sizes(s, 1)), ...
        fullfile(src, 'TNO/ir', t(k).name), fullfile(src, 'TNO/vi', t(k).name), 40 * s, 60 * s, sizes(s, 1), sizes(s, 2)};
    end
  end
  r = dir(fullfile(src, 'RoadScene/ir/*.jpg'));
  for k = 1:numel(r)
    cases(end+1, :) = {sprintf('road%s_64x48', r(k).name(6:end-4)), ...
      fullfile(src, 'RoadScene/ir', r(k).name), fullfile(src, 'RoadScene/vi', r(k).name), 30, 50, 48, 64};
  end
end
for d = {'ir', 'vi', 'vifb'}
  if ~exist(fullfile(out, d{1}), 'dir'), mkdir(fullfile(out, d{1})); end
end
for k = 1:rows(cases)
  [name, fir, fvi, r0, c0, h, w] = cases{k, :};
  ir = imread(fir); vi = imread(fvi);
  if h > 0
    ir = ir(r0:r0+h-1, c0:c0+w-1, :); vi = vi(r0:r0+h-1, c0:c0+w-1, :);
    ir = ir(:, :, 1);
    if size(vi, 3) == 3, vi = rgb2gray(vi); end
    fir = fullfile(out, 'ir', [name '.png']); fvi = fullfile(out, 'vi', [name '.png']);
    imwrite(ir, fir); imwrite(vi, fvi);
  end
  try
    img = run_MSVD(struct('img', fvi), struct('img', fir), 0);
    imwrite(img, fullfile(out, 'vifb', [name '.png']));
    status = sprintf('%dx%dx%d', columns(img), rows(img), size(img, 3));
  catch err
    status = ['error: ' strrep(err.message, char(10), ' ')];
  end
  % the bases of the first (or only) channel, as run_MSVD computes them for even sizes
  I = double(imread(fir)) / 255; V = double(imread(fvi)) / 255;
  I = I(1:2*floor(end/2), 1:2*floor(end/2), 1); V = V(1:2*floor(end/2), 1:2*floor(end/2), 1);
  [~, U1] = MSVD(I); [~, U2] = MSVD(V);
  printf('%s %s %s\n', name, sprintf('%+.3f ', sum(U1 .* U2)), status);
end

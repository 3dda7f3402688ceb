% Generates crates/mmif-metrics/tests/data/mefb: small inputs (crops of MEFB's multi-exposure
% pairs, synthetic edge cases) and the values of MEFB's metrics/metrics*.m on them, run by GNU
% Octave. Documentation only: the tests read the generated files, never this script.
%   octave-cli crates/mmif-metrics/tests/octave/gen_mefb.m MEFB_DIR OUT_DIR
% MEFB_DIR is a checkout of xingchenzhang/MEFB (its metrics/ folder is put on the path, its
% input/<scene>/<scene>_{A,B}.tif are read); the shims in tools/octave_shims provide freqspace and
% blkproc (absent from Octave) and MATLAB's rgb2gray; run from the repository root.
% MEFB ships no fused images, so the "fused" image of a pair is a simple blend of its crops
% (mean, max, or a weighted mean), which is all the metrics need.
pkg load image
% the crop (of 40 candidate positions) whose least varying channel varies most, so that no
% channel of an over- or under-exposed source is saturated to a constant
function [r, c] = best_crop(A, B, h, w, seed)
  best = -1;
  for t = 1:40
    rr = 1 + mod(97 * seed + 389 * t, size(A, 1) - h);
    cc = 1 + mod(131 * seed + 577 * t, size(A, 2) - w);
    a = double(A(rr:rr+h-1, cc:cc+w-1, :)); b = double(B(rr:rr+h-1, cc:cc+w-1, :));
    s = min([std(reshape(a, [], size(a, 3))), std(reshape(b, [], size(b, 3)))]);
    if s > best, best = s; r = rr; c = cc; end
  end
end

args = argv();
mefb = args{1}; out = args{2};
addpath(fullfile(mefb, 'metrics'));
addpath(fileparts(mfilename('fullpath')));   % write_pnm, write_cases
addpath(fullfile(pwd, 'tools', 'octave_shims'));   % shims last added = first on the path
rd = @(s, x) imread(fullfile(mefb, 'input', s, [s '_' x '.tif']));
crop = @(X, r, c, h, w) X(r:r+h-1, c:c+w-1, :);
blend = @(A, B, wa) uint8(wa * double(A) + (1 - wa) * double(B));
scenes = {'Lake1', 'Knossos6', '507', 'AirBellowsGap', 'ArtistPalette', 'BalancedRock', ...
          'Bathtub', 'WallDrug', 'Zentrum', 'TestChart1', 'Museum1', 'WaffleHouse'};
% odd and even sizes, all at least 44 (MEF-SSIM's three scales; VIF's four need 41)
sizes = [45 49; 51 47; 47 45; 49 46; 44 53; 47 47; 53 45; 46 48; 45 51; 48 44; 44 49; 49 45];
pick = @(A, B, h, w, i) best_crop(A, B, h, w, i);
cases = {};
for i = 1:numel(scenes)
  A = rd(scenes{i}, 'A'); B = rd(scenes{i}, 'B');
  h = sizes(i, 1); w = sizes(i, 2);
  [r, c] = pick(A, B, h, w, i);
  a = crop(A, r, c, h, w); b = crop(B, r, c, h, w);
  switch mod(i, 3)
    case 0, f = blend(a, b, 0.5);
    case 1, f = max(a, b);
    case 2, f = blend(a, b, 0.3);
  end
  cases{end+1} = {sprintf('colour_%s', lower(scenes{i})), a, b, f};
  if i <= 4
    % all gray (one channel of each image, no rgb2gray involved)
    cases{end+1} = {sprintf('gray_%s', lower(scenes{i})), a(:,:,2), b(:,:,2), f(:,:,2)};
  end
end
% second crops of five scenes, 44 wide or high, fused by a weighted mean favouring the darker
for i = 1:5
  A = rd(scenes{i + 6}, 'A'); B = rd(scenes{i + 6}, 'B');
  h = 44 + mod(i, 2) * 3; w = 47 - mod(i, 2) * 3;
  [r, c] = pick(A, B, h, w, 50 + i);
  a = crop(A, r, c, h, w); b = crop(B, r, c, h, w);
  cases{end+1} = {sprintf('second_%s', lower(scenes{i + 6})), a, b, blend(a, b, 0.2)};
end
A = rd('Knossos6', 'A'); B = rd('Knossos6', 'B');
[r, c] = pick(A, B, 47, 51, 99);
a = crop(A, r, c, 47, 51); b = crop(B, r, c, 47, 51); f = blend(a, b, 0.6);
% gray sources with a colour fused image (MEFB's fused(:,:,1) path; AG's rgb2gray)
cases{end+1} = {'gray_sources_colour_fused', a(:,:,1), b(:,:,3), f};
% colour sources with a gray fused image (rgb2gray inside the metrics, or MATLAB's error)
cases{end+1} = {'colour_sources_gray_fused', a, b, f(:,:,2)};
% a colour fused image with one gray source: MATLAB's img(:,:,2) fails
cases{end+1} = {'one_gray_source', a, b(:,:,1), f};
% the fused image equal to a source
cases{end+1} = {'fused_is_source', a, b, a};
% constant fused image, zero fused image, constant source (colour)
cases{end+1} = {'const_fused', a, b, uint8(100 * ones(size(a)))};
cases{end+1} = {'zero_fused', a, b, uint8(zeros(size(a)))};
cases{end+1} = {'const_source', uint8(7 * ones(size(a))), b, f};
% between the SSIM windows and VIF's scales; below 11x11; one pixel
cases{end+1} = {'small', crop(a, 1, 1, 13, 12), crop(b, 1, 1, 13, 12), crop(f, 1, 1, 13, 12)};
cases{end+1} = {'tiny', crop(a, 1, 1, 8, 9), crop(b, 1, 1, 8, 9), crop(f, 1, 1, 8, 9)};
cases{end+1} = {'one_pixel', a(5,5,:), b(5,5,:), f(5,5,:)};
names = {'Cross_entropy','Entropy','NMI','Psnr','Qncie','TE','Avg_gradient','Edge_intensity', ...
         'Qabf','SD','Spatial_frequency','Qc','Qw','Qy','MEF_SSIM','Qcb','Qcv','VIF','Qp'};
write_cases(out, cases, names, {'img1', 'img2'});

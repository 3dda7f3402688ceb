% Generates crates/mmif-metrics/tests/data/extra/values.csv: N_abf and MS-SSIM as their public
% MATLAB code computes them, run by GNU Octave. Documentation only: the tests read the values.
%   octave-cli crates/mmif-metrics/tests/octave/gen_extra.m CODE_DIR OUT_DIR
% CODE_DIR holds, unmodified:
%   objective_fusion_perform_fn.m, per_extn_im_fn.m  (xingchenzhang/VIFB methods/CBF, Shreyamsha Kumar)
%   sobel_fn.m          (Kumar's, e.g. ayushdogra135/medical-image-fusion sobel_fn.m @825b3e33)
%   msssim.m, ssim_index_new.m  (Wang et al.; e.g. obartra/ssim assets/ms-ssim @29da280e / @e9886b37)
% Cases: N_abf on every input triple of tests/data/mefb (colour made gray by the rgb2gray shim,
% rounded as on uint8), MS-SSIM and N_abf on synthetic integer images large enough for MS-SSIM's
% five scales (min side 176), defined by synth() below and rebuilt identically by the tests.
pkg load image
1;
function X = synth(h, w, k)
  % integer texture: mod(k1*r + k2*c + mod(r*c*k3 + k4, k5), 256), r, c from 0
  [c, r] = meshgrid(0:w-1, 0:h-1);
  X = mod(k(1) * r + k(2) * c + mod(r .* c * k(3) + k(4), k(5)), 256);
end
function G = gray_of(X)
  if size(X, 3) == 3, G = double(rgb2gray(X)); else, G = double(X); end
end
args = argv();
code = args{1}; out = args{2};
addpath(code);
addpath(fullfile(pwd, 'tools', 'octave_shims'));   % MATLAB's rgb2gray
fid = fopen(fullfile(out, 'values.csv'), 'w');
fprintf(fid, 'case,metric,value\n');
nabf = @(a, b, f) nthargout(3, @objective_fusion_perform_fn, f, {a, b});
% N_abf on the MEFB test inputs
mefb = fullfile(fileparts(out), 'mefb');
csv = fileread(fullfile(mefb, 'values.csv'));
names = setdiff(unique(regexp(csv, '^[a-z0-9_]+(?=,)', 'match', 'lineanchors')), {'case'});
for i = 1:numel(names)
  n = names{i};
  rd = @(p) gray_of(imread(fullfile(mefb, [n '_' p '.pnm'])));
  [evalc_out, v] = evalc('nabf(rd(''img1''), rd(''img2''), rd(''fused''))');
  fprintf(fid, 'mefb:%s,Nabf,%.17g\n', n, v);
end
% synthetic cases: h w, then the parameters of A, B, then how F is made from them
S = {[176 181], [3 2 1 5 23], [1 4 3 12 19], 'mean';
     [183 176], [2 5 7 1 29], [5 1 2 9 31], 'mean';
     [190 187], [1 1 1 0 17], [4 3 5 3 13], 'max';
     [177 185], [7 3 2 4 37], [2 2 9 8 11], 'a';
     [176 176], [3 1 4 1 59], [2 6 5 3 53], 'mean';
     [181 179], [1 2 3 4 5],  [5 4 3 2 41], 'max';
     [186 191], [6 1 1 6 43], [1 6 6 1 47], 'mean';
     [179 182], [2 3 5 7 11], [13 1 2 3 7], 'mean';
     [178 177], [3 2 1 5 23], [1 4 3 12 19], 'sharp';
     [180 184], [2 5 7 1 29], [5 1 2 9 31], 'sharp';
     [184 178], [1 1 1 0 17], [4 3 5 3 13], 'noisy';
     [176 188], [6 1 1 6 43], [1 6 6 1 47], 'noisy';
     [175 200], [3 2 1 5 23], [1 4 3 12 19], 'mean'};   % below 176: MS-SSIM's -Inf
for i = 1:rows(S)
  hw = S{i, 1}; A = synth(hw(1), hw(2), S{i, 2}); B = synth(hw(1), hw(2), S{i, 3});
  switch S{i, 4}
    case 'mean', F = floor((A + B) / 2);
    case 'max', F = max(A, B);
    case 'a', F = A;
    case 'sharp', F = min(max(2 * A - B, 0), 255);   % edges stronger than both sources
    case 'noisy', F = min(floor((A + B) / 2) + mod(synth(hw(1), hw(2), [7 3 0 0 1]), 9), 255);
  end
  tag = sprintf('synth:%d:%d:%s:%s:%s', hw(1), hw(2), sprintf('%d ', S{i, 2}), sprintf('%d ', S{i, 3}), S{i, 4});
  [evalc_out, v] = evalc('nabf(A, B, F)');
  fprintf(fid, '%s,Nabf,%.17g\n', tag, v);
  m = (msssim(A, F) + msssim(B, F)) / 2;
  fprintf(fid, '%s,MS_SSIM,%.17g\n', tag, real(m));
end
fclose(fid);
